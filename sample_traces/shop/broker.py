"""An in-process message broker with topics, used by the choreography part of the landscape.

Producer and consumer spans are real SDK spans with the messaging semantic attributes; the
trace context travels in the message headers through the globally configured propagator
(W3C tracecontext), exactly as it would through Kafka record headers.
"""

from __future__ import annotations

import itertools
import json
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import Link, SpanKind, Tracer

SYSTEM = "inproc"


@dataclass(frozen=True)
class Message:
    """One published event: topic, id, JSON body and the headers carrying trace context."""

    topic: str
    message_id: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[dict[str, Any]], None]


class Broker:
    """Topics fan every message out to one queue per subscribed consumer group."""

    def __init__(self) -> None:
        self._subscriptions: dict[str, list[queue.Queue[Message | None]]] = {}
        self._ids = itertools.count(1)
        self._threads: list[threading.Thread] = []
        self._queues: list[queue.Queue[Message | None]] = []
        self.published = 0
        self.processed = 0
        self._lock = threading.Lock()

    def publish(self, tracer: Tracer, topic: str, payload: dict[str, Any]) -> str:
        """Send ``payload`` to every group subscribed to ``topic`` inside a PRODUCER span."""
        message_id = f"msg-{next(self._ids):06d}"
        with tracer.start_as_current_span(
            f"publish {topic}",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": SYSTEM,
                "messaging.destination.name": topic,
                "messaging.operation.type": "publish",
                "messaging.operation.name": "publish",
                "messaging.message.id": message_id,
            },
        ):
            headers: dict[str, str] = {}
            propagate.inject(headers)
            message = Message(topic, message_id, json.dumps(payload).encode(), headers)
            for subscriber in self._subscriptions.get(topic, []):
                subscriber.put(message)
        with self._lock:
            self.published += 1
        return message_id

    def subscribe(self, tracer: Tracer, group: str, topic: str, handler: Handler) -> None:
        """Consume ``topic`` as consumer group ``group`` on a thread of its own."""
        inbox: queue.Queue[Message | None] = queue.Queue()
        self._subscriptions.setdefault(topic, []).append(inbox)
        self._queues.append(inbox)
        thread = threading.Thread(
            target=self._consume, args=(tracer, group, inbox, handler), name=f"{group}-{topic}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _consume(
        self, tracer: Tracer, group: str, inbox: queue.Queue[Message | None], handler: Handler
    ) -> None:
        while (message := inbox.get()) is not None:
            try:
                parent = propagate.extract(message.headers)
                producer = trace.get_current_span(parent).get_span_context()
                # The consumer continues the producer's trace and also links to it, as the
                # messaging conventions recommend for single-message processing.
                with tracer.start_as_current_span(
                    f"process {message.topic}",
                    context=parent,
                    kind=SpanKind.CONSUMER,
                    links=[Link(producer)] if producer.is_valid else [],
                    attributes={
                        "messaging.system": SYSTEM,
                        "messaging.destination.name": message.topic,
                        "messaging.operation.type": "process",
                        "messaging.operation.name": "process",
                        "messaging.message.id": message.message_id,
                        "messaging.consumer.group.name": group,
                        "messaging.message.body.size": len(message.body),
                    },
                ):
                    handler(json.loads(message.body))
                with self._lock:
                    self.processed += 1
            finally:
                inbox.task_done()

    def drain(self) -> None:
        """Block until every published message has been processed."""
        for inbox in self._queues:
            inbox.join()

    def close(self) -> None:
        """Stop the consumer threads after draining."""
        self.drain()
        for inbox in self._queues:
            inbox.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
