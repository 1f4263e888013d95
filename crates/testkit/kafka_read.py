#!/usr/bin/env python3
"""Reads back every message of a Kafka topic with kafka-python, a client independent of the sink's (rskafka) and
of testkit's broker fake (kafka-protocol): usage `kafka_read.py HOST:PORT TOPIC [USER PASSWORD]`.

Prints one JSON object per message, in partition then offset order:
{"partition": p, "offset": o, "timestamp": ms, "key": "..."|null, "value": "..."|null}
and exits non-zero if the end of every partition is not reached within 30 s."""

import json
import sys
import time

from kafka import KafkaConsumer, TopicPartition


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    sasl = {}
    if len(sys.argv) > 4:
        sasl = dict(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                    sasl_plain_username=sys.argv[3], sasl_plain_password=sys.argv[4])
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             api_version=(2, 0, 0), consumer_timeout_ms=1000, **sasl)
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        sys.exit(f"topic {topic} has no partitions")
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    begin = consumer.beginning_offsets(tps)
    end = consumer.end_offsets(tps)
    for tp in tps:
        consumer.seek(tp, begin[tp])
    out = {tp.partition: [] for tp in tps}
    # Where each partition's reading is: the offset after the last message read.
    at = dict(begin)
    deadline = time.time() + 30
    while any(at[tp] < end[tp] for tp in tps):
        if time.time() > deadline:
            sys.exit(f"end offsets {end} not reached: at {at}")
        for tp, messages in consumer.poll(timeout_ms=500).items():
            for m in messages:
                at[tp] = m.offset + 1
                out[tp.partition].append({
                    "partition": tp.partition,
                    "offset": m.offset,
                    "timestamp": m.timestamp,
                    "key": m.key.decode() if m.key is not None else None,
                    "value": m.value.decode() if m.value is not None else None,
                })
    consumer.close()
    for p in sorted(out):
        for m in out[p]:
            print(json.dumps(m))


if __name__ == "__main__":
    main()
