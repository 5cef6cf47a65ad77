#!/usr/bin/env python3
"""`diffsketch serve --listen`: the remote engine over TCP on loopback (stdlib only).

  test_remote.py ENGINE MODELS_DIR WORK_DIR

Checks: the refusals at start (no token file, a token file readable by others, a short token, a
non-loopback address without TLS, a certificate without its key, a key readable by everyone, a
malformed address, --max-queue out of range); the token (missing, no hello first, wrong, right,
and never in the log); TLS with a self-signed certificate (the fingerprint the server prints is
the certificate's, a plain client is refused and the server serves on); two clients whose jobs
queue (the second sees its place, each gets its own result, equal to the same request run alone);
a cancel while queued; --max-queue refusing a job; a client killed mid-job (its job is cancelled and
the next one served at once); a client stalled in the TLS handshake or inside a frame (dropped after
its timeout while others are served).
"""
import hashlib
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dskproto import Reader, edit_request, frame, until_final  # noqa: E402

ENGINE, MODELS, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
MODEL = os.path.join(MODELS, "adm-small")
TOKEN = "remote-test-token-0123456789abcdef"
failures = []
os.makedirs(WORK, exist_ok=True)
ENV = dict(os.environ, DSK_MODEL_PATH=MODELS)


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def write_private(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


token_file = write_private(os.path.join(WORK, "token"), TOKEN + "\n")
loose_token = write_private(os.path.join(WORK, "token-loose"), TOKEN + "\n", 0o644)
short_token = write_private(os.path.join(WORK, "token-short"), "abc\n")
cert, key = os.path.join(WORK, "server.crt"), os.path.join(WORK, "server.key")
subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days",
                "30", "-subj", "/CN=localhost", "-keyout", key, "-out", cert], check=True, capture_output=True)
os.chmod(key, 0o600)
open_key = os.path.join(WORK, "server-open.key")
write_private(open_key, open(key).read(), 0o644)

# 1: refused at start, each with one clear message (exit status 2) and nothing listening.
def refused(args, expect, what, status=2):
    p = subprocess.run([ENGINE, "serve"] + args, capture_output=True, text=True, env=ENV, timeout=60)
    check(p.returncode == status and expect in p.stderr, f"{what}: refused ({p.returncode}: {p.stderr.strip()})")


refused(["--listen", "127.0.0.1:0"], "--listen needs --token-file", "no token file")
refused(["--listen", "127.0.0.1:0", "--token-file", loose_token], "chmod 600", "a token file with mode 0644")
refused(["--listen", "127.0.0.1:0", "--token-file", short_token], "at least 16", "a 3-character token")
refused(["--listen", "127.0.0.1:0", "--token-file", os.path.join(WORK, "nothing")], "does not exist", "a missing token file")
refused(["--listen", "0.0.0.0:0", "--token-file", token_file], "needs TLS", "a non-loopback address without TLS")
refused(["--listen", "127.0.0.1:0", "--token-file", token_file, "--tls-cert", cert], "go together",
        "a certificate without its key")
refused(["--listen", "127.0.0.1:0", "--token-file", token_file, "--tls-cert", cert, "--tls-key", open_key],
        "chmod 600", "a key every user can read")
refused(["--listen", "127.0.0.1:0", "--token-file", token_file, "--tls-cert", key, "--tls-key", key],
        "both must be PEM files", "a key given as the certificate")
refused(["--listen", "localhost", "--token-file", token_file], "HOST:PORT", "an address without a port")
refused(["--listen", "127.0.0.1:99999", "--token-file", token_file], "0..65535", "port 99999")
refused(["--socket", os.path.join(WORK, "s.sock"), "--token-file", token_file], "requires --listen",
        "a token file without --listen", status=107)  # CLI11's status for a missing companion option
refused(["--listen", "127.0.0.1:0", "--token-file", token_file, "--max-queue", "-1"], "--max-queue must be in 0..1000",
        "--max-queue -1")


def start(name, *extra):
    log = os.path.join(WORK, name + ".log")
    p = subprocess.Popen([ENGINE, "serve", "--listen", "127.0.0.1:0", "--token-file", token_file] + list(extra),
                         env=ENV, stderr=open(log, "wb"))
    port = fingerprint = None
    for _ in range(300):
        text = open(log).read()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
        if m:
            port = int(m.group(1))
            f = re.search(r"fingerprint (sha256:[0-9A-F:]+)", text)
            fingerprint = f and f.group(1)
            break
        time.sleep(0.1)
    return p, port, log, fingerprint


class Client:
    def __init__(self, port, tls=False, token=TOKEN, hello=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # pinned below, as the plug-in pins it
            self.sock = ctx.wrap_socket(self.sock)
            self.peer_fingerprint = "sha256:" + ":".join(f"{b:02X}" for b in hashlib.sha256(self.sock.getpeercert(True)).digest())
        self.reader = Reader(self.sock.recv)
        self.hello = None
        if hello:
            self.send({"type": "hello", "token": token, "payloads": []})
            self.hello = self.reader.message()

    def send(self, header_or_frame):
        self.sock.sendall(header_or_frame if isinstance(header_or_frame, bytes) else frame(header_or_frame))

    def close(self):
        self.sock.close()


def ended(client):
    try:
        return client.reader.message() is None
    except OSError:
        return True


# 2: the token.
server, port, log, _ = start("plain", "--idle-timeout", "3", "--max-queue", "1")
check(port is not None, f"a loopback TCP server with a token starts without TLS (port {port})")
c = Client(port, token="")
check(c.hello and c.hello["type"] == "error" and "none was sent" in c.hello["message"] and ended(c),
      f"no token: one clear error, then the connection ends ({c.hello and c.hello.get('message')})")
c = Client(port, hello=False)
c.send({"type": "models", "payloads": []})
m = c.reader.message()
check(m and m["type"] == "error" and "needs a token" in m["message"] and ended(c), "models before hello: refused")
t0 = time.time()
c = Client(port, token="wrong-token-wrong-token-wrong")
check(c.hello and c.hello["type"] == "error" and "refused the token" in c.hello["message"] and ended(c)
      and time.time() - t0 >= 0.9, f"a wrong token: refused after a pause ({time.time() - t0:.1f} s)")
c = Client(port)
check(c.hello and c.hello["type"] == "engine" and c.hello["pid"] == server.pid, "the right token: the engine answers hello")
c.send({"type": "models", "payloads": []})
m = c.reader.message()
check(m and m["type"] == "model-list" and "adm-small" in [x["id"] for x in m["models"]], "then it serves requests")
c.close()
big = Client(port, hello=False)
big.send(b"DSKP" + (4).to_bytes(2, "little") + (1).to_bytes(2, "little") + (100).to_bytes(4, "little"))
m = big.reader.message()
check(m and m["type"] == "error" and m["kind"] == "protocol" and ended(big),
      f"before the token, a frame with an image is refused ({m and m.get('message')})")

# 3: results alone, then the same requests from two clients at once: queued, never mixed.
def solo(seed, steps):
    c = Client(port)
    c.send(edit_request(MODEL, steps=steps, seed=seed))
    m, _ = until_final(c.reader)
    c.close()
    return m


ref_a, ref_b = solo(11, 40), solo(22, 3)
check(ref_a and ref_a["type"] == "result" and ref_b and ref_b["type"] == "result", "two edits alone give results")
a, b = Client(port), Client(port)
a.send(edit_request(MODEL, steps=40, seed=11))
first = a.reader.message()
check(first and first["type"] == "progress" and first["step"] >= 1, "client A's job runs")
b.send(edit_request(MODEL, steps=3, seed=22))
mb = b.reader.message()
check(mb and mb["type"] == "progress" and mb["queue"] == 1 and mb["step"] == 0,
      f"client B waits and sees its place: 1 job ahead ({mb})")
third = Client(port)
third.send(edit_request(MODEL, steps=3, seed=33))
m = third.reader.message()
check(m and m["type"] == "error" and "--max-queue" in m["message"], f"--max-queue 1: a third job is refused ({m and m.get('message')})")
third.close()
ma, _ = until_final(a.reader)
mb, progress_b = until_final(b.reader)
check(ma and ma["type"] == "result" and ma["seeds"] == [11] and ma["_payloads"] == ref_a["_payloads"],
      "client A gets its own result, equal to the same request alone")
check(mb and mb["type"] == "result" and mb["seeds"] == [22] and mb["_payloads"] == ref_b["_payloads"],
      "client B gets its own result, equal to the same request alone")
check(any(p["step"] > 0 for p in progress_b), "client B's job reports its steps once it runs")
# A cancel while queued: the job leaves the queue, answered "cancelled".
a.send(edit_request(MODEL, steps=1000, variants=4, seed=1))
a.reader.message()
b.send(edit_request(MODEL, steps=3, seed=2))
b.reader.message()
b.send({"type": "cancel", "payloads": []})
m, _ = until_final(b.reader)
check(m and m["type"] == "error" and m["kind"] == "cancelled", "a cancel while queued: the job leaves the queue")
# 4: a client killed mid-job: its job is cancelled and the next one is served at once.
b.send(edit_request(MODEL, steps=3, seed=22))
m = b.reader.message()
t0 = time.time()
a.sock.shutdown(socket.SHUT_RDWR)
a.close()
mb, _ = until_final(b.reader)
check(mb and mb["type"] == "result" and mb["_payloads"] == ref_b["_payloads"] and time.time() - t0 < 15,
      f"client A killed mid-job: B is served ({time.time() - t0:.1f} s)")
b.close()
# 5: a client stalled inside a frame holds up nobody and is dropped after --idle-timeout (3 s).
stalled = Client(port)
stalled.send(b"DSKP\x04")
t0 = time.time()
c = Client(port)
c.send({"type": "models", "payloads": []})
m = c.reader.message()
check(m and m["type"] == "model-list" and time.time() - t0 < 2, "a stalled client does not hold up another")
c.close()
m = stalled.reader.message()
check(m and m["type"] == "error" and "sent nothing for 3 s" in m["message"] and 2.5 < time.time() - t0 < 15,
      f"the stalled client is dropped after the idle timeout ({time.time() - t0:.1f} s)")
stalled.close()
check(server.poll() is None, "the server is still up")
server.send_signal(signal.SIGTERM)
server.wait(timeout=30)
check(TOKEN not in open(log).read(), "the token is never in the log")

# 6: TLS with a self-signed certificate.
server, port, log, fingerprint = start("tls", "--tls-cert", cert, "--tls-key", key)
der = ssl.PEM_cert_to_DER_cert(open(cert).read())
expected = "sha256:" + ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
check(fingerprint == expected, f"the server prints its certificate's SHA-256 fingerprint ({fingerprint})")
plain = socket.create_connection(("127.0.0.1", port), timeout=30)
plain.sendall(frame({"type": "hello", "token": TOKEN, "payloads": []}))
try:
    answer = plain.recv(100)
except OSError:
    answer = b""
check(not answer.startswith(b"DSKP"), "a client without TLS gets no answer from a TLS server")
plain.close()
handshake_stall = socket.create_connection(("127.0.0.1", port), timeout=30)
c = Client(port, tls=True)
check(c.peer_fingerprint == expected and c.hello and c.hello["type"] == "engine",
      "a TLS client sees the pinned fingerprint and is served while another stalls in its handshake")
c.send(edit_request(MODEL, steps=3, seed=22))
m, _ = until_final(c.reader)
check(m and m["type"] == "result" and m["_payloads"] == ref_b["_payloads"], "an edit over TLS gives the same result")
c.close()
t0 = time.time()
handshake_stall.settimeout(30)
try:
    gone = handshake_stall.recv(100) == b""
except OSError:
    gone = True
check(gone and time.time() - t0 < 25, f"a client stalled in the handshake is dropped ({time.time() - t0:.1f} s)")
handshake_stall.close()
check(server.poll() is None, "the TLS server is still up")
server.send_signal(signal.SIGTERM)
server.wait(timeout=30)

# 7: --background with --listen: returns once listening, naming the address the system chose.
bg = subprocess.run([ENGINE, "serve", "--background", "--listen", "127.0.0.1:0", "--token-file", token_file,
                     "--exit-when-idle", "3"], capture_output=True, text=True, timeout=60,
                    env=dict(ENV, XDG_CACHE_HOME=os.path.join(WORK, "cache")))
m = re.search(r"listening on 127\.0\.0\.1:(\d+)", bg.stdout)
check(bg.returncode == 0 and m is not None, f"background: returns once listening ({bg.stdout.strip()})")
if m:
    c = Client(int(m.group(1)))
    check(c.hello and c.hello["type"] == "engine" and c.hello["exit_when_idle"] == 3, "background: it serves")
    c.close()

print(f"{len(failures)} failed" if failures else "all passed")
sys.exit(1 if failures else 0)
