"""TLS and mutual TLS on the gRPC listener: who is refused, who is served, and certificates
replaced while the daemon runs (SIGHUP, and files rewritten without a signal) without dropping
a connection.

Certificates come from the suite's Pki: server certificates "grpc-a" (CA "ca-a") and "grpc-b"
(CA "ca-b", so a channel that trusts only ca-a can tell which one it was served), client
certificates from CA "clients" and, for the rogue, from CA "rogue"."""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess

import grpc

from harness import (HEALTH, LIST_AGENTS, SCALE, channel_to, check, eq, wait_until)


def material(t):
    pki = t.suite.pki
    return {"a": pki.leaf("grpc-a", "ca-a"), "b": pki.leaf("grpc-b", "ca-b"),
            "client": pki.leaf("client-ok", "clients", server=False),
            "rogue": pki.leaf("client-rogue", "rogue", server=False),
            "clients_ca": pki.ca("clients")["cert"]}


def install(t, leaf, client_ca=None):
    """Copies leaf's certificate and key to the paths the daemon reads (tls.pem, tls.key in the
    test dir), atomically, as a Kubernetes Secret volume swaps them; gives the paths."""
    paths = {"cert": os.path.join(t.dir, "tls.pem"), "key": os.path.join(t.dir, "tls.key")}
    for what in ("cert", "key"):
        shutil.copyfile(leaf[what], paths[what] + ".new")
        os.replace(paths[what] + ".new", paths[what])
    if client_ca:
        paths["client_ca"] = client_ca
    return paths


def health(channel, timeout=3):
    """Health/Check on channel: "SERVING" or the status code's name."""
    call = channel.unary_unary(HEALTH, request_serializer=lambda b: b,
                               response_deserializer=lambda b: b)
    try:
        call(b"", timeout=timeout * SCALE)
        return "SERVING"
    except grpc.RpcError as e:
        return e.code().name


def served_cn(address, ca, client=None):
    """The CN of the certificate a new TLS connection to address is served, verified against
    ca; None when the handshake fails."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(["h2"])
    if client:
        ctx.load_cert_chain(client["cert"], client["key"])
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=5 * SCALE) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as tls:
                subject = dict(x[0] for x in tls.getpeercert()["subject"])
                return subject.get("commonName")
    except (OSError, ssl.SSLError):
        return None


def test_tls_listener_refuses_plaintext(t):
    """With --tls-cert/--tls-key the listener speaks TLS only: a plaintext client is refused,
    a TLS client that trusts the CA is served."""
    m = material(t)
    env = t.start(tls_server=install(t, m["a"]), tls_client={"ca": m["a"]["ca"]})
    eq(health(env.daemon.channel), "SERVING", "Health over TLS")
    plain = channel_to(env.daemon.address)
    eq(health(plain), "UNAVAILABLE", "Health in plaintext to the TLS listener")
    plain.close()
    eq(served_cn(env.daemon.address, m["a"]["ca"]), "grpc-a", "certificate served")
    eq(env.daemon.logged("serving")["tls"], "on", "the serving line says TLS is on")


def test_mtls_requires_a_client_certificate_from_the_ca(t):
    """With --tls-client-ca a client must present a certificate signed by that CA: none, or one
    from another CA, is refused at the handshake; a good one is served."""
    m = material(t)
    good = {"ca": m["a"]["ca"], "cert": m["client"]["cert"], "key": m["client"]["key"]}
    env = t.start(tls_server=install(t, m["a"], client_ca=m["clients_ca"]), tls_client=good)
    eq(health(env.daemon.channel), "SERVING", "Health with a good client certificate")
    eq(env.call(LIST_AGENTS, b"").code, grpc.StatusCode.OK, "ListAgents with it")
    for name, client in (("no certificate", {"ca": m["a"]["ca"]}),
                         ("a certificate from another CA",
                          {"ca": m["a"]["ca"], "cert": m["rogue"]["cert"],
                           "key": m["rogue"]["key"]})):
        channel = channel_to(env.daemon.address, client)
        eq(health(channel), "UNAVAILABLE", "Health with %s" % name)
        channel.close()
    eq(env.daemon.logged("serving")["tls"], "client certificates required", "serving line")


def tls_config(t, cert, key):
    return write(t, "c.json", '{"tls_cert_file": "%s", "tls_key_file": "%s"}' % (cert, key))


def rotation(t, switch):
    """Serves grpc-a (named by a config file), opens a connection, has `switch` move the
    daemon to grpc-b, then checks new connections get grpc-b while the first connection keeps
    working."""
    m = material(t)
    paths = install(t, m["a"])
    env = t.start(args=["--config", tls_config(t, paths["cert"], paths["key"])],
                  tls_client={"ca": m["a"]["ca"]})
    old = env.daemon.channel  # one HTTP/2 connection, made with grpc-a
    eq(health(old), "SERVING", "Health before the rotation")
    switch(env, m)
    wait_until(lambda: served_cn(env.daemon.address, m["b"]["ca"]) == "grpc-b", 10,
               "a new connection to be served grpc-b")
    eq(served_cn(env.daemon.address, m["a"]["ca"]), None, "grpc-a after the rotation")
    # The old channel trusts only ca-a: if its connection had been dropped, reconnecting would
    # meet grpc-b and fail. It still works, so the connection survived.
    eq(health(old), "SERVING", "Health on the connection made before the rotation")
    fresh = channel_to(env.daemon.address, {"ca": m["b"]["ca"]})
    eq(health(fresh), "SERVING", "Health on a new connection trusting ca-b")
    fresh.close()
    return env


def test_tls_rotation_on_sighup(t):
    """SIGHUP re-reads the config and the files it names: here other files, which only a
    reload can find (the files in use do not change), served from the first new connection."""
    def sighup(env, m):
        tls_config(t, m["b"]["cert"], m["b"]["key"])
        env.daemon.proc.send_signal(signal.SIGHUP)
        env.daemon.wait_logged("configuration reloaded")
        eq(served_cn(env.daemon.address, m["b"]["ca"]), "grpc-b", "first connection after")
    rotation(t, sighup)


def test_tls_rotation_when_files_change(t):
    """No signal: the listener notices replaced files (as cert-manager or a Secret volume
    replaces them) before its next handshake."""
    env = rotation(t, lambda env, m: install(t, m["b"]))
    check(not env.daemon.logged("configuration reloaded"), "a reload happened")
    env.daemon.wait_logged("gRPC listener's TLS files changed: new connections get the new "
                           "certificate")


def run_daemon(t, args, timeout=10):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYTE_")}
    proc = subprocess.run([t.suite.daemon, "--listen", "127.0.0.1:0", "--metrics-listen", "off"]
                          + args, env=env, capture_output=True, text=True,
                          timeout=timeout * SCALE, cwd=t.dir)
    return proc.returncode, [line for line in proc.stderr.splitlines() if line.strip()]


def write(t, name, text):
    path = os.path.join(t.dir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_tls_bad_files_refused_at_start_and_reload(t):
    """Files TLS cannot use stop the start with one line naming the setting, and a reload that
    names them is refused with the old certificate still served."""
    m = material(t)
    not_pem = write(t, "not.pem", "hello\n")
    cases = [
        (["--tls-cert", m["a"]["cert"], "--tls-key", m["b"]["key"]], "tls_key_file",
         "does not match"),
        (["--tls-cert", not_pem, "--tls-key", m["a"]["key"]], "tls_cert_file",
         "no PEM certificate"),
        (["--tls-cert", m["a"]["cert"], "--tls-key", m["a"]["cert"]], "tls_key_file",
         "no PEM private key"),
        (["--tls-cert", m["a"]["cert"], "--tls-key", m["a"]["key"], "--tls-client-ca", not_pem],
         "tls_client_ca_file", "no PEM certificate"),
        (["--tls-cert", m["a"]["cert"], "--tls-key", "/nonexistent/k.pem"], "tls_key_file",
         "No such file"),
        (["--tls-cert", m["a"]["cert"]], "tls_key_file", "go together"),
        (["--tls-client-ca", m["clients_ca"]], "tls_client_ca_file", "needs tls_cert_file"),
    ]
    for args, key, words in cases:
        code, lines = run_daemon(t, args)
        eq(code, 1, "exit code for %s" % args)
        eq(len(lines), 1, "one line for %s: %r" % (args, lines))
        check(key in lines[0] and words in lines[0], "%s: %r" % (args, lines[0]))

    config = tls_config(t, m["a"]["cert"], m["a"]["key"])
    env = t.start(args=["--config", config], tls_client={"ca": m["a"]["ca"]})
    tls_config(t, m["b"]["cert"], m["a"]["key"])
    env.daemon.proc.send_signal(signal.SIGHUP)
    refused = env.daemon.wait_logged("reload refused: invalid configuration, the old one stays "
                                     "in force")
    check("tls_key_file" in refused["error"] and "does not match" in refused["error"],
          "refusal: %r" % refused["error"])
    eq(served_cn(env.daemon.address, m["a"]["ca"]), "grpc-a", "certificate after the refusal")


def test_plaintext_beyond_loopback_warns_once(t):
    """Plaintext on an address other machines reach logs one warning saying what to turn on;
    on loopback, none."""
    env = t.start(args=["--listen", "0.0.0.0:{port}"])
    warnings = [e for e in env.daemon.events() if "plaintext" in e.get("msg", "")]
    eq(len(warnings), 1, "plaintext warnings on 0.0.0.0")
    check("tls_cert_file" in warnings[0]["msg"] and "tls_client_ca_file" in warnings[0]["msg"],
          "the warning names what to set: %r" % warnings[0]["msg"])
    local = t.start()
    eq([e for e in local.daemon.events() if "plaintext" in e.get("msg", "")], [],
       "plaintext warnings on 127.0.0.1")


def test_cli_against_the_mtls_daemon(t):
    """The command-line tools reach the daemon's mutual-TLS listener with --ca-file, --cert and
    --key; without the client certificate, or in plaintext, they fail with exit code 1."""
    from test_cli import cli, one_error_line, template_file
    m = material(t)
    good = {"ca": m["a"]["ca"], "cert": m["client"]["cert"], "key": m["client"]["key"]}
    env = t.start(tls_server=install(t, m["a"], client_ca=m["clients_ca"]), tls_client=good)
    tls = ["--addr", env.daemon.address, "--ca-file", m["a"]["ca"]]
    client = ["--cert", m["client"]["cert"], "--key", m["client"]["key"]]
    code, out, err = cli(t, "agents", *tls, *client)
    eq((code, err), (0, ""), "agents with a client certificate")
    check("spark" in out and "databricks" in out, "agents table: %r" % out)
    code, out, err = cli(t, "submit", template_file(t), *tls, *client)
    eq((code, err), (0, ""), "submit with a client certificate")
    meta = out.splitlines()[0]
    eq(json.loads(meta)["run_id"], "1000", "resource_meta from the TLS daemon")
    code, out, err = cli(t, "status", meta, *tls, *client)
    eq((code, err), (0, ""), "status with a client certificate")
    code, out, err = cli(t, "agents", *tls, "--timeout", "3")
    eq(code, 1, "agents without a client certificate")
    one_error_line(err, "agents", "ListAgents failed: ")
    code, out, err = cli(t, "agents", "--addr", env.daemon.address, "--timeout", "3")
    eq(code, 1, "agents in plaintext")
    eq(len(env.fake.requests("/runs/submit")), 1, "submits that reached Databricks")
