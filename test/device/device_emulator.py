#!/usr/bin/env python3
"""A Pepeunit device in CPython, standard library only, speaking the wire formats the
MicroPython client speaks (device-protocol.md): it downloads its firmware tgz with
wbits=9, inflates it with zlib.decompressobj(wbits=9), reads the ustar with tarfile
dropping the first two characters of each name, checks env.json and schema.json,
then talks raw MQTT 3.1.1 over a socket: CONNECT (username = JWT, password flag set,
empty password), CONNACK exactly 20 02 00 00 within 5 s, one SUBSCRIBE per input
topic with a granted SUBACK within 5 s, PUBLISH at QoS 0 and 1, PINGREQ.

Progress goes to stdout as JSON lines: {"event": "ready", ...} once connected,
subscribed and published; {"event": "input", ...} for the first value received on an
input topic (then it exits 0). Any protocol deviation raises and exits non-zero.
"""

import argparse
import base64
import io
import json
import re
import socket
import struct
import sys
import tarfile
import time
import urllib.request
import zlib

TIMEOUT_S = 5.0
HEX40 = re.compile(r"^[0-9a-f]{40}$")
SECTIONS = ["input_base_topic", "output_base_topic", "input_topic", "output_topic"]


def emit(event, **fields):
    fields["event"] = event
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def check(cond, message):
    if not cond:
        raise AssertionError(message)


# ---------------------------------------------------------------- HTTP + archive


def http_get(url, token):
    req = urllib.request.Request(url, headers={"x-auth-token": token})
    with urllib.request.urlopen(req, timeout=TIMEOUT_S) as res:
        headers = {k.lower(): v for k, v in res.getheaders()}
        body = res.read()
    # MicroPython cannot de-chunk and does not decode Content-Encoding (§5).
    check("content-length" in headers, "response without Content-Length: " + url)
    check(int(headers["content-length"]) == len(body), "Content-Length differs from the body")
    check("chunked" not in headers.get("transfer-encoding", ""), "chunked response")
    check("content-encoding" not in headers, "response with Content-Encoding")
    return body


def unpack_firmware(archive):
    # zlib stream (RFC 1950) with a 512-byte window: CMF 0x18 = deflate, CINFO 1.
    check(archive[0] == 0x18, "not a zlib stream with wbits 9: first byte %#x" % archive[0])
    check(((archive[0] << 8) | archive[1]) % 31 == 0, "bad zlib header check bits")
    inflater = zlib.decompressobj(wbits=9)
    tar_bytes = inflater.decompress(archive) + inflater.flush()
    check(inflater.eof, "zlib stream did not end")
    files = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
        for member in tar.getmembers():
            check(member.name.startswith("./"), "member name without ./: " + member.name)
            check(member.isfile() or member.isdir(), "member is not a file or dir: " + member.name)
            check(member.type in (tarfile.REGTYPE, tarfile.DIRTYPE), "not a plain ustar member")
            if member.isdir():
                continue
            # What MicroPython does: drop the first two characters of the name.
            files[member.name[2:]] = tar.extractfile(member).read()
    return files


def check_env(env, token):
    for key in ("PU_DOMAIN", "PU_HTTP_TYPE", "PU_APP_PREFIX", "PU_API_ACTUAL_PREFIX",
                "PU_MQTT_HOST", "PU_AUTH_TOKEN", "PU_SECRET_KEY", "PU_ENCRYPT_KEY",
                "PU_MIN_LOG_LEVEL", "PU_COMMIT_VERSION"):
        check(isinstance(env.get(key), str), "env.%s is not a string" % key)
    for key in ("PU_MQTT_PORT", "PU_MQTT_PING_INTERVAL", "PU_MQTT_KEEPALIVE",
                "PU_STATE_SEND_INTERVAL", "PU_MAX_LOG_LENGTH"):
        check(type(env.get(key)) is int, "env.%s is not an integer" % key)
    check(env["PU_AUTH_TOKEN"] == token, "env.json carries another token")
    check(HEX40.match(env["PU_COMMIT_VERSION"]) is not None, "PU_COMMIT_VERSION is not 40-hex")
    check(env["PU_APP_PREFIX"] == "/pepeunit" and env["PU_API_ACTUAL_PREFIX"] == "/api/v1",
          "unexpected API prefixes")


def check_schema(schema):
    check(list(schema.keys()) == SECTIONS, "schema sections: %r" % list(schema.keys()))
    for section in SECTIONS:
        check(isinstance(schema[section], dict), section + " is not an object")
        for name, topics in schema[section].items():
            check(isinstance(topics, list) and topics, "%s.%s is not a topic list" % (section, name))
            check(all(isinstance(t, str) for t in topics), "%s.%s has a non-string" % (section, name))


def uuid_of_token(token):
    # As the MicroPython client does: search the decoded payload for "uuid":".
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    text = base64.urlsafe_b64decode(payload).decode()
    at = text.index('"uuid":"')
    return text[at + 8:at + 44]


# ---------------------------------------------------------------- raw MQTT 3.1.1


def mqtt_str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def remaining_length(n):
    out = bytearray()
    while True:
        byte = n % 128
        n //= 128
        if n:
            byte |= 0x80
        out.append(byte)
        if not n:
            return bytes(out)


class Mqtt:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT_S)
        self.pid = 0
        self.pending = []  # PUBLISH packets that arrived while waiting for an ack

    def send(self, first_byte, body):
        self.sock.sendall(bytes([first_byte]) + remaining_length(len(body)) + body)

    def read_exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            data += chunk
        return data

    def read_packet(self):
        first = self.read_exact(1)[0]
        length, shift = 0, 0
        while True:
            b = self.read_exact(1)[0]
            length |= (b & 0x7F) << shift
            if not b & 0x80:
                break
            shift += 7
        return first, self.read_exact(length)

    def next_pid(self):
        self.pid = self.pid % 65535 + 1
        return self.pid

    def connect(self, client_id, token, keepalive):
        # Clean session, username and password flags: 0x02 | 0x80 | 0x40.
        variable = mqtt_str("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", keepalive)
        self.send(0x10, variable + mqtt_str(client_id) + mqtt_str(token) + mqtt_str(""))
        self.sock.settimeout(TIMEOUT_S)
        connack = self.read_exact(4)
        check(connack == b"\x20\x02\x00\x00", "CONNACK is not 20 02 00 00: " + connack.hex())

    def wait_for(self, packet_type, pid=None):
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            first, body = self.read_packet()
            if first >> 4 == 3:
                self.on_publish(first, body)
                continue
            if first >> 4 == packet_type and (pid is None or body[:2] == struct.pack("!H", pid)):
                return first, body

    def subscribe(self, topic):
        pid = self.next_pid()
        self.send(0x82, struct.pack("!H", pid) + mqtt_str(topic) + b"\x00")
        first, body = self.wait_for(9, pid)
        check(first == 0x90 and len(body) == 3, "malformed SUBACK")
        check(body[2] != 0x80, "subscription refused: " + topic)
        return body[2]

    def publish(self, topic, payload, qos=0):
        body = mqtt_str(topic)
        if qos:
            pid = self.next_pid()
            body += struct.pack("!H", pid)
        self.send(0x30 | (qos << 1), body + payload)
        if qos:
            first, ack = self.wait_for(4, pid)
            check(first == 0x40 and len(ack) == 2, "malformed PUBACK")

    def ping(self):
        self.send(0xC0, b"")
        first, body = self.wait_for(13)
        check(first == 0xD0 and body == b"", "malformed PINGRESP")

    def on_publish(self, first, body):
        qos = (first >> 1) & 3
        topic_len = struct.unpack("!H", body[:2])[0]
        topic = body[2:2 + topic_len].decode()
        rest = body[2 + topic_len:]
        if qos:
            pid, rest = rest[:2], rest[2:]
            self.send(0x40, pid)  # PUBACK
        self.pending.append((topic, rest))

    def next_publish(self, timeout_s):
        deadline = time.monotonic() + timeout_s
        while not self.pending:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            first, body = self.read_packet()
            if first >> 4 == 3:
                self.on_publish(first, body)
        return self.pending.pop(0)


# ---------------------------------------------------------------- the device


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base-url", required=True, help="instance origin, e.g. http://127.0.0.1:8080")
    p.add_argument("--mqtt-host", default=None, help="instead of env PU_MQTT_HOST")
    p.add_argument("--token", required=True, help="the unit JWT")
    p.add_argument("--output", default="output/pepeunit", help="output topic name to publish")
    p.add_argument("--value", default="42", help="value published on the output")
    p.add_argument("--wait-input-s", type=float, default=30.0)
    a = p.parse_args()

    uuid = uuid_of_token(a.token)
    api = a.base_url.rstrip("/") + "/pepeunit/api/v1"
    files = unpack_firmware(http_get(api + "/units/firmware/tgz/%s?wbits=9&level=9" % uuid, a.token))
    check("env.json" in files and "schema.json" in files, "archive lacks env.json/schema.json")
    check(b'\n    "' in files["env.json"], "env.json is not 4-space indented")
    env = json.loads(files["env.json"])
    schema = json.loads(files["schema.json"])
    check_env(env, a.token)
    check_schema(schema)
    served_env = json.loads(http_get(api + "/units/env/" + uuid, a.token))
    check(served_env["PU_COMMIT_VERSION"] == env["PU_COMMIT_VERSION"], "archive/env commit differ")
    check(json.loads(http_get(api + "/units/get_current_schema/" + uuid, a.token)) == schema,
          "archive schema.json differs from get_current_schema")

    mqtt = Mqtt(a.mqtt_host or env["PU_MQTT_HOST"], env["PU_MQTT_PORT"])
    mqtt.connect(uuid, a.token, env["PU_MQTT_KEEPALIVE"])
    topics = []
    for section in ("input_base_topic", "input_topic"):
        for names in schema[section].values():
            for t in names:
                if t not in topics:
                    topics.append(t)
    granted = [mqtt.subscribe(t) for t in topics]

    state = {
        "millis": int(time.time() * 1000),
        "mem_free": 100000,
        "mem_alloc": 20000,
        "freq": 160000000,
        "ifconfig": ["127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1"],
        "statvfs": [4096, 4096, 512, 300, 300, 0, 0, 0, 0, 255],
        "pu_commit_version": env["PU_COMMIT_VERSION"],
    }
    mqtt.publish(schema["output_base_topic"]["state/pepeunit"][0], json.dumps(state).encode(), qos=0)
    mqtt.publish(schema["output_topic"][a.output][0], a.value.encode(), qos=1)
    mqtt.ping()
    emit("ready", uuid=uuid, topics=topics, granted=granted, files=sorted(files),
         commit=env["PU_COMMIT_VERSION"], mqtt_port=env["PU_MQTT_PORT"])

    input_topics = {t for names in schema["input_topic"].values() for t in names}
    deadline = time.monotonic() + a.wait_input_s
    while True:
        topic, payload = mqtt.next_publish(max(0.1, deadline - time.monotonic()))
        if topic in input_topics:
            emit("input", topic=topic, payload=payload.decode("utf-8", "replace"))
            break
    mqtt.send(0xE0, b"")  # DISCONNECT
    mqtt.sock.close()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a deviation from the contract: report and fail
        emit("failed", error="%s: %s" % (type(e).__name__, e))
        sys.exit(1)
