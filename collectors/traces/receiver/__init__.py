"""An OTLP/HTTP trace receiver writing Collector-framed protobuf files that ``scan`` reads."""

from __future__ import annotations

from orchscan.collectors.traces.receiver.server import TRACES_PATH, Receiver, ReceiverLimits, serve

__all__ = ["TRACES_PATH", "Receiver", "ReceiverLimits", "serve"]
