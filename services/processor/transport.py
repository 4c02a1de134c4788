"""Faust's aiokafka transport, with the two client settings Faust does not expose.

* `fetch_max_wait_ms`: Faust hard-codes 1500 ms in its worker consumer
  (`faust/transport/drivers/aiokafka.py`, `_create_worker_consumer`); Tansu holds an idle fetch for
  about half of it, so every hop would cost ~400 ms. The consumer is built by Faust and its fetch wait
  set before it starts (aiokafka reads it in `start()`, when it creates its fetcher).
* idempotence: Faust enables it only inside transactions; here it follows the settings flag, since the
  embedded Tansu refuses InitProducerId.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiokafka
import faust
from faust.transport.drivers import aiokafka as driver

__all__ = ["ProcessorApp", "Transport"]


class ProcessorApp(faust.App):
    """A Faust app whose Kafka clients use this transport and the two settings below."""

    def __init__(self, *args: Any, fetch_max_wait_ms: int, idempotent_producer: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.idempotent_producer = idempotent_producer

    def _new_transport(self) -> Transport:
        return Transport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> Transport:
        return Transport(self.conf.broker_producer, self)


class _ConsumerThread(driver.AIOKafkaConsumerThread):
    app: ProcessorApp  # only `ProcessorApp` uses this transport

    def _create_worker_consumer(self, transport: driver.Transport) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = self.app.fetch_max_wait_ms  # read by AIOKafkaConsumer.start()
        return consumer


class _Consumer(driver.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Producer(driver.Producer):
    app: ProcessorApp  # only `ProcessorApp` uses this transport

    def _settings_extra(self) -> Mapping[str, Any]:
        if self.app.idempotent_producer:
            return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}
        return super()._settings_extra()


class Transport(driver.Transport):
    """The aiokafka transport with the consumer and producer above."""

    Consumer = _Consumer
    Producer = _Producer
