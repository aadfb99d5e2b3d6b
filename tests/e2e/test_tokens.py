"""Where each call's Databricks token comes from (issue 12's order, issue 13's OAuth M2M).

The daemon runs against the fake workspace and, for per-namespace tokens, the fake Kubernetes
API (tests/fake/fake_kubernetes.py, in its "pod" environment: KUBERNETES_SERVICE_HOST/PORT and a
service account directory). Every token is a canary registered with the harness, which fails a
test that finds one in the daemon's output or an answer; the fake workspace's record says which
token each request carried. Expectations follow the issue, not the code's tables.
"""

import concurrent.futures
import json
import os
import re
import secrets

from harness import (CREATE, GET, below_protocol, check, create_request, custom_config, eq,
                     generations, resource_meta_of, wait_until)
from test_ops import samples, scrape

import grpc

# Every source applies to both protocol generations (Flyte 2's calls that bring no connection
# token go down the same chain); tests of what happens below the protocol run once.
GENERATIONS = (1, 2)

NS = "flytesnacks-development"  # the namespace harness.create_request() puts in the metadata
SUBMIT = "/api/2.1/jobs/runs/submit"
RUNS_GET = "/api/2.1/jobs/runs/get"
CANCEL = "/api/2.1/jobs/runs/cancel"
OIDC = "/oidc/v1/token"
SECRET_PATH = "/api/v1/namespaces/%s/secrets/%s"


def canary(t, kind):
    value = "%s-CANARY-%s" % (kind, secrets.token_hex(8))
    t.secrets.append(value)
    return value


def bearers(env, path):
    """The bearer token of each request the fake workspace got on `path`, in order."""
    return [r["headers"].get("authorization", "")[len("Bearer "):] for r in env.fake.requests(path)]


def metrics(env):
    """The daemon's /metrics samples (its port is in its log); the text joins the transcript, so
    the harness's leak check covers it."""
    text = scrape(env.daemon.metrics_port())[2]
    env.test.transcript.append(text)
    return samples(text)


def source_count(env, source):
    return metrics(env).get('fdc_token_source_total{source="%s"}' % source, 0)


def log_lines(env, pattern):
    """The daemon's log lines matching pattern, in key=value form in both log-format passes."""
    return [line for line in env.daemon.log_lines() if re.search(pattern, line)]


def create(t, env, custom=None, execution=None, code=None, timeout=10, token=None):
    """CreateTask; gives the resource_meta (dict), or the failed reply when `code` is given.
    token: Flyte 2's connection secret."""
    req = create_request(t.pb, custom=custom or custom_config(),
                         execution=execution or "e" + secrets.token_hex(5), token=token)
    reply = env.call(CREATE, req, t.pb.admin.CreateTaskResponse, timeout=timeout)
    if code is not None:
        eq(reply.code, code, "CreateTask status (%s)" % reply.details)
        return reply
    eq(reply.code, grpc.StatusCode.OK, "CreateTask status (%s)" % reply.details)
    return resource_meta_of(reply.msg)


def start_in_cluster(t, ns_token=None, secret="databricks-token", args=(), env=None, **kw):
    """A daemon in a "pod": the fake Kubernetes API holds `ns_token` in Secret `secret` of NS
    (none when ns_token is None); the fake workspace takes the default token and ns_token."""
    kube = t.kube()
    if ns_token is not None:
        kube.secret(NS, secret, ns_token)
    daemon_env = dict(kube.env())
    daemon_env.update(env or {})
    workspace = t.start(args=kube.args() + list(args), env=daemon_env, **kw)
    workspace.fake.config(tokens=[workspace.token] + ([ns_token] if ns_token else []))
    return kube, workspace


# ---- per-namespace Secrets --------------------------------------------------------------------

def test_namespace_secret_serves_the_run(t):
    """The task's namespace Secret serves CreateTask; resource_meta names it (never the token)
    and GetTask/DeleteTask, which carry no namespace, use the same Secret."""
    ns_token = canary(t, "dapi-ns")
    kube, env = start_in_cluster(t, ns_token)
    meta = create(t, env)
    eq(meta.get("namespace"), NS, "resource_meta namespace")
    eq(meta.get("token_secret"), "databricks-token", "resource_meta token_secret")
    check(ns_token not in str(meta), "resource_meta must not carry the token")
    env.get(meta)
    env.delete(meta)
    eq(bearers(env, SUBMIT), [ns_token], "runs/submit token")
    eq(bearers(env, RUNS_GET), [ns_token], "runs/get token")
    eq(bearers(env, CANCEL), [ns_token], "runs/cancel token")
    # The service account's token, the pod's CA, the Secret flytekit reads; cached since.
    reqs = kube.requests()
    eq([r["path"] for r in reqs], [SECRET_PATH % (NS, "databricks-token")], "API requests")
    eq(reqs[0]["token"], kube.sa_token, "service account token sent")
    eq(len(log_lines(env, r'msg="call done".*token_source=namespace_secret '
                          r'token_name=%s/databricks-token' % NS)), 3, "calls logged with their source")
    eq(source_count(env, "namespace_secret"), 3, "fdc_token_source_total namespace_secret")


def test_namespace_secret_custom_name(t):
    """custom.databricksTokenSecret names another Secret in the namespace."""
    ns_token = canary(t, "dapi-team")
    kube, env = start_in_cluster(t, ns_token, secret="team-token")
    meta = create(t, env, custom=custom_config(databricksTokenSecret="team-token"))
    eq(meta.get("token_secret"), "team-token", "resource_meta token_secret")
    eq(bearers(env, SUBMIT), [ns_token], "runs/submit token")
    eq(kube.requests()[0]["path"], SECRET_PATH % (NS, "team-token"), "Secret read")
    # A name Kubernetes cannot have is refused rather than fall back to another identity.
    reply = create(t, env, custom=custom_config(databricksTokenSecret="Team_Token"),
                   code=grpc.StatusCode.INVALID_ARGUMENT)
    check("databricksTokenSecret" in reply.details, "message names the key: %r" % reply.details)


def test_namespace_secret_absent_falls_back(t):
    """No Secret (404), or one without the key: the next source, as in flytekit; nothing
    recorded in resource_meta."""
    kube, env = start_in_cluster(t, None)
    meta = create(t, env)
    check("namespace" not in meta, "resource_meta must not name a Secret: %r" % meta)
    eq(bearers(env, SUBMIT), [env.token], "the default token")
    kube.secret(NS, "other", data={"not-token": "x"})
    create(t, env, custom=custom_config(databricksTokenSecret="other"))
    eq(bearers(env, SUBMIT)[1], env.token, "a Secret without the key: the default token")
    eq(source_count(env, "default"), 2, "fdc_token_source_total default")


@below_protocol
def test_namespace_secret_forbidden_falls_back_and_warns_once(t):
    """403 (no RBAC): the next source, and one warning naming the missing RBAC, however many
    calls (the answer is read again each time here: namespace_token_ttl_ms 0)."""
    ns_token = canary(t, "dapi-ns")
    kube, env = start_in_cluster(t, ns_token, args=["--config", write_config(t, {
        "namespace_token_ttl_ms": 0})])
    kube.inject(SECRET_PATH % (NS, "databricks-token"), [{"status": 403}], repeat=True)
    for _ in range(3):
        create(t, env)
    eq(bearers(env, SUBMIT), [env.token] * 3, "the default token after a 403")
    eq(len(kube.requests()), 3, "the Secret asked for each time (not cached)")
    warnings = log_lines(env, r"level=warning.*RBAC")
    eq(len(warnings), 1, "one RBAC warning")
    check("get" in warnings[0] and "secrets" in warnings[0] and NS in warnings[0],
          "the warning names the missing permission: %r" % warnings[0])


def write_config(t, settings):
    path = os.path.join(t.dir, "config-%s.json" % secrets.token_hex(3))
    with open(path, "w") as f:
        json.dump(settings, f)
    return path


@below_protocol
def test_namespace_api_trouble_retried_then_unavailable(t):
    """500s are retried within the call's deadline, then the call answers UNAVAILABLE: never
    the default token instead."""
    ns_token = canary(t, "dapi-ns")
    kube, env = start_in_cluster(t, ns_token)
    kube.inject(SECRET_PATH % (NS, "databricks-token"), [{"status": 500}], repeat=True)
    reply = create(t, env, code=grpc.StatusCode.UNAVAILABLE, timeout=3)
    check("Kubernetes Secret %s/databricks-token" % NS in reply.details,
          "message names the Secret: %r" % reply.details)
    eq(env.fake.requests(SUBMIT), [], "nothing sent to Databricks")
    check(len(kube.requests()) > 1, "the API request was retried (%d)" % len(kube.requests()))
    # The API recovers: the next call gets the Secret.
    kube.inject(SECRET_PATH % (NS, "databricks-token"), [])
    create(t, env)
    eq(bearers(env, SUBMIT), [ns_token], "the Secret's token once the API answers")


@below_protocol
def test_namespace_api_slow_then_unavailable(t):
    """An API slower than the call's deadline: UNAVAILABLE before the deadline, not
    DEADLINE_EXCEEDED, and not the default token; a transient error then an answer: served."""
    ns_token = canary(t, "dapi-ns")
    kube, env = start_in_cluster(t, ns_token)
    kube.inject(SECRET_PATH % (NS, "databricks-token"), [{"delay_ms": 8000}], repeat=True)
    create(t, env, code=grpc.StatusCode.UNAVAILABLE, timeout=3)
    eq(env.fake.requests(SUBMIT), [], "nothing sent to Databricks")
    kube.inject(SECRET_PATH % (NS, "databricks-token"), [{"status": 503}, {"fault": "close"}])
    create(t, env)
    eq(bearers(env, SUBMIT), [ns_token], "served after two failed attempts")


def test_not_in_cluster_skips_namespace_secret(t):
    """No KUBERNETES_SERVICE_HOST: the source is skipped silently, the API never asked."""
    kube = t.kube()
    kube.secret(NS, "databricks-token", canary(t, "dapi-ns"))
    env = t.start(args=kube.args())
    meta = create(t, env)
    check("namespace" not in meta, "resource_meta must not name a Secret")
    eq(bearers(env, SUBMIT), [env.token], "the default token")
    eq(kube.requests(), [], "requests to the Kubernetes API")
    eq(log_lines(env, r"level=warning.*(Kubernetes|RBAC|service account)"), [], "warnings")


def test_namespace_secret_cached_single_flight(t):
    """Concurrent calls for one Secret share one API request; later calls within the TTL none.
    With gRPC worker threads, so that calls answered from the cache take their token on a worker
    and the others wait on the loop thread."""
    ns_token = canary(t, "dapi-ns")
    kube, env = start_in_cluster(t, ns_token, args=["--workers", "2"])
    kube.inject(SECRET_PATH % (NS, "databricks-token"), [{"delay_ms": 700}])
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        metas = list(pool.map(lambda _: create(t, env), range(12)))
    eq(len(kube.requests()), 1, "API requests for 12 concurrent calls")
    for _ in range(3):
        create(t, env)
    eq(len(kube.requests()), 1, "API requests within the TTL")
    eq(set(bearers(env, SUBMIT)), {ns_token}, "every submit's token")
    eq(len({m["run_id"] for m in metas}), 12, "runs")


@below_protocol
def test_namespace_secret_rotation_seen_after_ttl(t):
    """A rotated Secret is used once the cached answer expires; the service account token the
    kubelet rotates is read again for every API request."""
    old, new = canary(t, "dapi-old"), canary(t, "dapi-new")
    kube, env = start_in_cluster(t, old, args=["--config", write_config(t, {
        "namespace_token_ttl_ms": 300})])
    env.fake.config(tokens=[env.token, old, new])
    create(t, env)
    kube.secret(NS, "databricks-token", new)
    new_sa = "k8s-sa-CANARY-" + secrets.token_hex(8)
    t.secrets.append(new_sa)
    # As a real API server does during a rotation, both service account tokens are good for a
    # moment; then only the new one.
    kube.control("POST", "/fake/config", {"sa_tokens": [kube.sa_token, new_sa]})
    kube.write_sa_token(new_sa)
    kube.control("POST", "/fake/config", {"sa_tokens": [new_sa]})
    wait_until(lambda: create(t, env) and bearers(env, SUBMIT)[-1] == new, 10,
               "the rotated Secret in use")
    eq(kube.requests()[-1]["token"], new_sa, "the rotated service account token")


def test_namespace_unusable_token_refused(t):
    """A Secret whose token no HTTP header can carry is refused, not replaced by another."""
    kube, env = start_in_cluster(t, None)
    kube.secret(NS, "databricks-token", data={"token": "two words"})
    reply = create(t, env, code=grpc.StatusCode.UNAUTHENTICATED)
    check("HTTP header" in reply.details, "message: %r" % reply.details)
    eq(env.fake.requests(SUBMIT), [], "nothing sent to Databricks")


@generations(2)
def test_connection_secret_before_every_other_source(t):
    """Flyte 2's connection secret serves its own call: the namespace Secret is not even read,
    and resource_meta names no Secret."""
    ns_token = canary(t, "dapi-ns")
    conn_token = canary(t, "dapi-conn")
    kube, env = start_in_cluster(t, ns_token)
    env.fake.config(tokens=[env.token, ns_token, conn_token])
    meta = create(t, env, token=conn_token)
    check("namespace" not in meta, "resource_meta must not name a Secret: %r" % meta)
    eq(bearers(env, SUBMIT), [conn_token], "runs/submit token")
    eq(kube.requests(), [], "requests to the Kubernetes API")
    eq(source_count(env, "connection_secret"), 1, "fdc_token_source_total connection_secret")


# ---- resource_meta's auth_token ------------------------------------------------------------------

def test_flytekit_auth_token_used_for_its_run(t):
    """A run flytekit >= 1.16.15 started carries its token in resource_meta: the run's calls use
    it (and only that run's), the allowlist still applies."""
    env = t.start()
    run_token = canary(t, "dapi-flytekit")
    env.fake.config(tokens=[env.token, run_token])
    meta = create(t, env)
    flytekit_meta = dict(meta, auth_token=run_token)
    env.get(flytekit_meta)
    env.get(meta)
    eq(bearers(env, RUNS_GET), [run_token, env.token], "runs/get tokens")
    check(log_lines(env, r'operation=get.*token_source=resource_meta'), "source logged")
    evil = dict(flytekit_meta, databricks_instance="evil.example.com")
    env.fails(GET, env.get_request(evil), grpc.StatusCode.PERMISSION_DENIED)
    eq(source_count(env, "resource_meta"), 1, "fdc_token_source_total resource_meta")


# ---- the default token's places ----------------------------------------------------------------

@below_protocol
def test_default_token_flytekit_variable(t):
    """_FSEC_FLYTE_DATABRICKS_ACCESS_TOKEN (FLYTE_SECRETS_ENV_PREFIX renames it) before the
    file and FLYTE_DATABRICKS_ACCESS_TOKEN."""
    token = canary(t, "dapi-fsec")
    other = canary(t, "dapi-plain")
    env = t.start(token=token, token_file=False, env={
        "MY_FLYTE_DATABRICKS_ACCESS_TOKEN": token, "FLYTE_SECRETS_ENV_PREFIX": "MY_",
        "FLYTE_DATABRICKS_ACCESS_TOKEN": other, "FLYTE_SECRETS_DEFAULT_DIR": t.dir})
    create(t, env)
    eq(bearers(env, SUBMIT), [token], "runs/submit token")
    check(log_lines(env, r'token_source=default token_name="env MY_FLYTE_DATABRICKS_ACCESS_TOKEN"'),
          "the place logged")


@below_protocol
def test_default_token_flytekit_file(t):
    """The file flyte_databricks_access_token in FLYTE_SECRETS_DEFAULT_DIR, with
    FLYTE_SECRETS_FILE_PREFIX, before FLYTE_DATABRICKS_ACCESS_TOKEN."""
    token = canary(t, "dapi-file")
    secrets_dir = os.path.join(t.dir, "etc-secrets")
    os.makedirs(secrets_dir)
    with open(os.path.join(secrets_dir, "pre_flyte_databricks_access_token"), "w") as f:
        f.write(token + "\n")
    env = t.start(token=token, token_file=False, env={
        "FLYTE_SECRETS_DEFAULT_DIR": secrets_dir, "FLYTE_SECRETS_FILE_PREFIX": "pre_",
        "FLYTE_DATABRICKS_ACCESS_TOKEN": canary(t, "dapi-plain")})
    create(t, env)
    eq(bearers(env, SUBMIT), [token], "runs/submit token")


@below_protocol
def test_token_file_rotated_without_sighup(t):
    """Kubernetes replaces a mounted Secret's file in place and sends no signal: the daemon
    notices and uses the new token."""
    env = t.start()
    create(t, env)
    new = canary(t, "dapi-rotated")
    env.fake.config(tokens=[new])
    with open(t.token_path + ".new", "w") as f:
        f.write(new + "\n")
    os.chmod(t.token_path + ".new", 0o600)
    os.rename(t.token_path + ".new", t.token_path)
    wait_until(lambda: log_lines(env, r"msg=\"configuration reloaded\""), 10, "a reload")
    create(t, env)
    eq(bearers(env, SUBMIT)[-1], new, "the rotated token")
    check(log_lines(env, r'msg="file changed, reloading the configuration"'), "the change logged")


@below_protocol
def test_missing_token_names_every_place(t):
    """No token anywhere: UNAUTHENTICATED at once, naming every place looked at."""
    empty = os.path.join(t.dir, "no-secrets")
    os.makedirs(empty)
    env = t.start(token_file=False, env={"FLYTE_SECRETS_DEFAULT_DIR": empty})
    reply = create(t, env, code=grpc.StatusCode.UNAUTHENTICATED)
    for place in ("connection secret", "per-namespace Secret", "auth_token", "OAuth client",
                  "_FSEC_FLYTE_DATABRICKS_ACCESS_TOKEN",
                  empty + "/flyte_databricks_access_token", "FLYTE_DATABRICKS_ACCESS_TOKEN",
                  "token_file"):
        check(place in reply.details, "message lacks %r: %r" % (place, reply.details))
    eq(env.fake.requests(SUBMIT), [], "nothing sent to Databricks")
    eq(source_count(env, "none"), 1, "fdc_token_source_total none")


# ---- OAuth machine-to-machine ---------------------------------------------------------------------

def start_oauth(t, expires_in=3600, delay_ms=0, secret=None, **kw):
    """A daemon with a service principal (DATABRICKS_CLIENT_ID/SECRET) besides its default
    token; the fake workspace takes only the tokens it issues."""
    client_secret = canary(t, "dose")
    env_vars = {"DATABRICKS_CLIENT_ID": "fdc-e2e-client",
                "DATABRICKS_CLIENT_SECRET": secret or client_secret}
    env_vars.update(kw.pop("env", {}))
    env = t.start(env=env_vars, **kw)
    env.fake.config(oauth={"client_id": "fdc-e2e-client", "client_secret": client_secret,
                           "expires_in": expires_in, "delay_ms": delay_ms})
    return env


def register_issued(t, env):
    t.secrets.extend(env.fake.bearer_tokens())


def test_oauth_token_fetched_once_for_concurrent_calls(t):
    env = start_oauth(t, delay_ms=500, args=["--workers", "2"])
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda _: create(t, env), range(10)))
    register_issued(t, env)
    eq(len(env.fake.requests(OIDC)), 1, "token requests for 10 concurrent calls")
    tokens = set(bearers(env, SUBMIT))
    eq(len(tokens), 1, "one token for every call")
    check(env.token not in tokens, "the default token must not be used")
    req = env.fake.requests(OIDC)[0]
    check(req["headers"].get("authorization", "").startswith("Basic "), "HTTP Basic credentials")
    eq(req["body"], "grant_type=client_credentials&scope=all-apis", "token request body")
    check(log_lines(env, r'token_source=oauth token_name="127.0.0.1:\d+ fdc-e2e-client"'),
          "source logged")
    eq(source_count(env, "oauth"), 10, "fdc_token_source_total oauth")


@below_protocol
def test_oauth_token_refreshed_before_expiry(t):
    """A token is used until shortly before expires_in, then a new one is fetched."""
    env = start_oauth(t, expires_in=4)
    meta = create(t, env)
    first = bearers(env, SUBMIT)[0]

    def refreshed():
        env.get(meta)
        return len(set(bearers(env, RUNS_GET) + [first])) == 2

    wait_until(refreshed, 15, "a new OAuth token", interval=0.3)
    register_issued(t, env)
    check(len(env.fake.requests(OIDC)) >= 2, "token requests")


def test_oauth_401_refresh_once_and_retry_once(t):
    """Databricks refuses a token before its time (401): one new token, the request sent once
    more, and the call succeeds."""
    env = start_oauth(t)
    meta = create(t, env)
    env.fake.control("POST", "/fake/oauth/revoke")
    r = env.get(meta)
    eq(env.phase_name(r.phase), "INITIALIZING", "GetTask after the refresh")
    register_issued(t, env)
    eq(len(env.fake.requests(OIDC)), 2, "token requests")
    tokens = bearers(env, RUNS_GET)
    eq(len(tokens), 2, "runs/get attempts")
    check(tokens[0] != tokens[1], "the retry carries the new token")
    check(log_lines(env, r"refused the OAuth token \(401\)"), "the refresh logged")


@below_protocol
def test_oauth_401_not_looped(t):
    """A workspace that refuses every token: one refresh, one retry, then UNAUTHENTICATED."""
    env = start_oauth(t)
    meta = create(t, env)
    env.fake.control("POST", "/fake/inject", {"method": "GET", "path": RUNS_GET, "repeat": True,
                                               "answers": [{"http_status": 401, "body": {
                                                   "error_code": "UNAUTHENTICATED",
                                                   "message": "Token is expired."}}]})
    env.fails(GET, env.get_request(meta), grpc.StatusCode.UNAUTHENTICATED)
    register_issued(t, env)
    eq(len(env.fake.requests(RUNS_GET)), 2, "runs/get attempts")
    eq(len(env.fake.requests(OIDC)), 2, "token requests")


@below_protocol
def test_oauth_client_refused(t):
    """A wrong client secret: UNAUTHENTICATED naming the endpoint's error; never the default
    token."""
    env = start_oauth(t, secret=canary(t, "dose-wrong"))
    reply = create(t, env, code=grpc.StatusCode.UNAUTHENTICATED)
    check("invalid_client" in reply.details, "message: %r" % reply.details)
    eq(env.fake.requests(SUBMIT), [], "nothing sent to Databricks")


def test_oauth_after_namespace_secret(t):
    """The order: the namespace Secret before OAuth, OAuth before the default token."""
    ns_token = canary(t, "dapi-ns")
    kube = t.kube()
    kube.secret(NS, "databricks-token", ns_token)
    env = start_oauth(t, args=kube.args(), env=kube.env())
    env.fake.config(tokens=[ns_token])
    create(t, env)
    create(t, env, custom=custom_config(databricksTokenSecret="absent"))
    register_issued(t, env)
    tokens = bearers(env, SUBMIT)
    eq(tokens[0], ns_token, "the namespace Secret first")
    check(tokens[1] not in (ns_token, env.token), "then the OAuth token")
    eq(len(env.fake.requests(OIDC)), 1, "token requests")
