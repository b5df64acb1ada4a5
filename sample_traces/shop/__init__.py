"""A small shop landscape of real FastAPI services, instrumented with the OpenTelemetry SDK."""
