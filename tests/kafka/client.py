"""An external Kafka client for eddy's tests (confluent-kafka, i.e. librdkafka as shipped
by Confluent; nothing of eddy's). Commands:

  create BOOTSTRAP TOPIC PARTITIONS
  produce BOOTSTRAP TOPIC      stdin: one JSON object per line with "value" (string or
                               null), optional "key", "partition", "timestamp" (ms)
  consume BOOTSTRAP TOPIC MIN  print every record as a JSON line (partition, offset, key,
                               key_hex (the raw key bytes), value, timestamp), reading by assign() from the beginning
                               until at least MIN records and 2 s of quiet (or 60 s)
"""
import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def create(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for _, f in admin.create_topics([NewTopic(topic, num_partitions=int(partitions), replication_factor=1)]).items():
        f.result(timeout=30)
    deadline = time.time() + 30
    while time.time() < deadline:
        md = admin.list_topics(timeout=5)
        if topic in md.topics and len(md.topics[topic].partitions) == int(partitions):
            return
        time.sleep(0.1)
    raise SystemExit(f"topic {topic} did not appear")


def produce(bootstrap, topic):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    errors = []

    def done(err, msg):
        if err is not None:
            errors.append(str(err))

    n = 0
    for line in sys.stdin:
        if not line.strip():
            continue
        r = json.loads(line)
        kwargs = {}
        if r.get("key") is not None:
            kwargs["key"] = r["key"].encode()
        if r.get("partition") is not None:
            kwargs["partition"] = r["partition"]
        if r.get("timestamp") is not None:
            kwargs["timestamp"] = r["timestamp"]
        value = r.get("value")
        p.produce(topic, value=None if value is None else value.encode(), on_delivery=done, **kwargs)
        n += 1
        if n % 10000 == 0:
            p.poll(0)
    left = p.flush(60)
    if left or errors:
        raise SystemExit(f"produce failed: {left} undelivered, errors {errors[:3]}")
    print(n)


def consume(bootstrap, topic, minimum):
    minimum = int(minimum)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "eddy-test-reader", "enable.auto.commit": False})
    md = c.list_topics(topic, timeout=10)
    parts = list(md.topics[topic].partitions)
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    seen = 0
    last = time.time()
    deadline = time.time() + 60
    while time.time() < deadline:
        m = c.poll(0.2)
        if m is None:
            if seen >= minimum and time.time() - last > 2:
                break
            continue
        if m.error():
            continue
        last = time.time()
        seen += 1
        key = m.key()
        value = m.value()
        print(json.dumps({
            "partition": m.partition(),
            "offset": m.offset(),
            "key": None if key is None else key.decode("utf-8", "replace"),
            "key_hex": None if key is None else key.hex(),
            "value": None if value is None else value.decode(),
            "timestamp": m.timestamp()[1],
        }), flush=True)
    c.close()


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"create": create, "produce": produce, "consume": consume}[cmd](*args)
