#!/usr/bin/python3
"""Static checks of the Dockerfile (no container engine is needed or used).

    tests/packaging/check-dockerfile.py [--no-self-test] [--no-context-build] [DOCKERFILE]

Checks the rules the image must keep: a Debian 12 build stage that runs `make`,
a bookworm-slim runtime stage holding only the runtime libraries, every base
image pinned by digest (@sha256:, ARG defaults resolved), a numeric
non-root USER, exec-form ENTRYPOINT/CMD, the gRPC and metrics ports, clean
apt-get use, no remote ADD, the `pyflyte` and `c0` links the official Helm
charts start the image with; and .dockerignore keeping build outputs and
history out of the context. Then it copies what the build stage COPYs into a
temporary directory and runs `make` there, proving that the context is enough
to build. The self-test breaks the Dockerfile one rule at a time (in memory,
and via tests/packaging/fixtures/bad-*.Dockerfile) and expects each break to
be caught. Prints "ok NAME" / "FAIL NAME: reason" and "N passed, N failed";
exits 1 on any failure. Python standard library only.
"""

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(HERE, "fixtures")

BINARY = "/usr/local/bin/flyte-databricks-connector"
BUILD_IMAGE = re.compile(r"^(docker\.io/(library/)?)?debian:bookworm(@sha256:[0-9a-f]{64})?$")
RUNTIME_IMAGE = re.compile(r"^(docker\.io/(library/)?)?debian:bookworm-slim(@sha256:[0-9a-f]{64})?$")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
ARG_REF = re.compile(r"\$\{(\w+)\}|\$(\w+)")
# Runtime packages of what the binary links (grpc core, protobuf-c, curl, cJSON,
# sd_notify, the metrics HTTP server) and the CA store curl needs for TLS.
ALLOWED_RUNTIME_PACKAGES = {
    "libgrpc29", "libprotobuf-c1", "libcurl4", "libcjson1", "libsystemd0",
    "libmicrohttpd12", "ca-certificates",
}
REQUIRED_PORTS = {"8000", "9090"}
# Names the official flyteconnector Helm charts run (`command: [pyflyte, serve, agent]` in Flyte
# 1.16, `command: [c0]` in Flyte 2): each must be a link to the binary, on the PATH.
ALIASES = {"/usr/local/bin/pyflyte", "/usr/local/bin/c0"}
# Paths that must never reach the build context.
MUST_IGNORE = [".git", "build"]


class Instruction:
    def __init__(self, line, keyword, args):
        self.line = line
        self.keyword = keyword
        self.args = args

    def __repr__(self):
        return "line %d: %s %s" % (self.line, self.keyword, self.args)


def parse(text):
    """Gives the instructions, continuation lines joined, comments dropped."""
    out = []
    buf, start = "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not buf:
            start = n
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        keyword, _, args = buf.partition(" ")
        out.append(Instruction(start, keyword.upper(), args.strip()))
        buf = ""
    if buf:
        keyword, _, args = buf.partition(" ")
        out.append(Instruction(start, keyword.upper(), args.strip()))
    return out


def global_args(instructions):
    """The ARG defaults declared before the first FROM, which FROM lines may use."""
    args = {}
    for ins in instructions:
        if ins.keyword == "FROM":
            break
        if ins.keyword == "ARG":
            name, _, default = ins.args.partition("=")
            args[name.strip()] = default.strip()
    return args


def split_stages(instructions):
    """Gives a list of stages: dicts with image (as written), resolved (ARGs replaced by their
    defaults), name, line, body."""
    stages = []
    args = global_args(instructions)
    for ins in instructions:
        if ins.keyword == "FROM":
            words = [w for w in ins.args.split() if not w.startswith("--")]
            name = None
            if len(words) >= 3 and words[1].lower() == "as":
                name = words[2]
            image = words[0] if words else ""
            resolved = ARG_REF.sub(lambda m: args.get(m.group(1) or m.group(2), ""), image)
            stages.append({"image": image, "resolved": resolved, "name": name,
                           "line": ins.line, "body": []})
        elif stages:
            stages[-1]["body"].append(ins)
    return stages


def exec_form(args):
    """Gives the JSON array of an exec-form instruction, or None."""
    if not args.startswith("["):
        return None
    try:
        value = json.loads(args)
    except ValueError:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        return None
    return value


def shell_commands(args):
    """Splits a shell-form RUN into simple commands (lists of words)."""
    try:
        words = shlex.split(args, posix=True)
    except ValueError:
        words = args.split()
    cmds, cur = [], []
    for w in words:
        if w in ("&&", "||", ";", "|"):
            if cur:
                cmds.append(cur)
            cur = []
        else:
            cur.append(w)
    if cur:
        cmds.append(cur)
    return cmds


def apt_installs(args):
    """Gives (options, packages) for each `apt-get install` in a RUN."""
    found = []
    for cmd in shell_commands(args):
        if len(cmd) >= 2 and cmd[0] in ("apt-get", "apt") and "install" in cmd[1:]:
            rest = cmd[cmd.index("install") + 1:]
            opts = [w for w in rest if w.startswith("-")]
            pkgs = [w for w in rest if not w.startswith("-")]
            found.append((opts, pkgs))
    return found


def runs_make(args):
    form = exec_form(args)
    cmds = [form] if form else shell_commands(args)
    return any(cmd and os.path.basename(cmd[0]) == "make" for cmd in cmds)


def ignored(patterns, path):
    """True if a .dockerignore pattern list excludes path (last match wins)."""
    result = False
    for pat in patterns:
        neg = pat.startswith("!")
        pat = pat[1:] if neg else pat
        pat = pat.strip("/")
        parts = path.strip("/").split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        if any(fnmatch.fnmatch(p, pat) or fnmatch.fnmatch(p, "**/" + pat) for p in prefixes):
            result = not neg
    return result


def read_ignore(text):
    return [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]


# Each rule: (name, function(ctx) -> None or a failure message).
def rule_stages(c):
    if len(c["stages"]) < 2:
        return "need a build stage and a runtime stage, found %d FROM" % len(c["stages"])


def rule_build_base(c):
    s = c["stages"][0] if c["stages"] else None
    if not s or not BUILD_IMAGE.match(s["resolved"]):
        return "first FROM must be debian:bookworm (@sha256:...), found %r" % (
            s["resolved"] if s else None)


def rule_runtime_base(c):
    s = c["stages"][-1] if c["stages"] else None
    if not s or not RUNTIME_IMAGE.match(s["resolved"]):
        return "last FROM must be debian:bookworm-slim (@sha256:...), found %r" % (
            s["resolved"] if s else None)


def rule_digest_pinned(c):
    """Every base image is written with @sha256: and resolves (ARG defaults in) to a full
    digest: a tag alone can be moved to other content."""
    for s in c["stages"]:
        if s["image"] in c["stage_names"] or s["image"] == "scratch":
            continue
        if "@sha256:" not in s["image"]:
            return "line %d: FROM %s is not pinned by digest (@sha256:...)" % (s["line"],
                                                                                s["image"])
        if not DIGEST.search(s["resolved"]):
            return "line %d: FROM %s resolves to %s, not a 64-digit sha256 digest" % (
                s["line"], s["image"], s["resolved"])


def rule_pinned_tags(c):
    for s in c["stages"]:
        image = s["image"]
        if image in c["stage_names"] or image == "scratch":
            continue
        ref = s["resolved"].split("@")[0]
        tag = ref.rsplit(":", 1)[1] if ":" in ref.split("/")[-1] else None
        if tag is None or tag == "latest":
            return "line %d: FROM %s has no pinned tag" % (s["line"], image)


def rule_build_runs_make(c):
    if len(c["stages"]) < 2:
        return "no build stage"
    builders = [s for s in c["stages"][:-1]
                if any(i.keyword == "RUN" and runs_make(i.args) for i in s["body"])]
    if not builders:
        return "no stage before the runtime stage runs `make`"


def final_body(c):
    return c["stages"][-1]["body"] if c["stages"] else []


def rule_user(c):
    users = [i for i in final_body(c) if i.keyword == "USER"]
    if not users:
        return "runtime stage has no USER: it would run as root"
    spec = users[-1].args
    m = re.fullmatch(r"(\d+)(?::(\d+))?", spec)
    if not m:
        return "line %d: USER %s must be numeric uid[:gid] (runAsNonRoot cannot verify names)" % (
            users[-1].line, spec)
    if int(m.group(1)) == 0 or (m.group(2) is not None and int(m.group(2)) == 0):
        return "line %d: USER %s is root" % (users[-1].line, spec)


def rule_expose(c):
    ports = set()
    for i in final_body(c):
        if i.keyword == "EXPOSE":
            ports.update(p.split("/")[0] for p in i.args.split())
    missing = REQUIRED_PORTS - ports
    if missing:
        return "runtime stage EXPOSE lacks %s" % ", ".join(sorted(missing))


def rule_entrypoint(c):
    eps = [i for i in final_body(c) if i.keyword == "ENTRYPOINT"]
    if not eps:
        return "runtime stage has no ENTRYPOINT"
    form = exec_form(eps[-1].args)
    if form is None:
        return "line %d: ENTRYPOINT must be an exec-form JSON array (no shell)" % eps[-1].line
    if form[0] != BINARY:
        return "line %d: ENTRYPOINT must start with %s, found %s" % (eps[-1].line, BINARY, form[0])


def rule_cmd(c):
    for i in final_body(c):
        if i.keyword == "CMD" and exec_form(i.args) is None:
            return "line %d: CMD must be an exec-form JSON array (no shell)" % i.line


def rule_no_shell_after_user(c):
    seen_user = False
    for i in final_body(c):
        if i.keyword == "USER":
            seen_user = True
        elif seen_user and i.keyword == "RUN" and exec_form(i.args) is None:
            return "line %d: shell-form RUN after USER in the runtime stage" % i.line
    for i in final_body(c):
        if i.keyword in ("ENTRYPOINT", "CMD"):
            form = exec_form(i.args) or []
            if form and os.path.basename(form[0]) in ("sh", "bash", "dash"):
                return "line %d: %s runs a shell" % (i.line, i.keyword)


def rule_no_remote_add(c):
    for i in c["instructions"]:
        if i.keyword == "ADD" and re.search(r"(https?|ftp)://|git@", i.args):
            return "line %d: ADD of a URL (fetch in a RUN with a checksum, or vendor it)" % i.line


def rule_apt_no_recommends(c):
    for i in c["instructions"]:
        if i.keyword != "RUN":
            continue
        for opts, _ in apt_installs(i.args):
            if "--no-install-recommends" not in opts:
                return "line %d: apt-get install without --no-install-recommends" % i.line
            if "--install-recommends" in opts or re.search(r"Install-Recommends=(true|1|yes)",
                                                            i.args, re.I):
                return "line %d: apt-get install turns recommends back on" % i.line


def rule_apt_cleanup(c):
    for i in c["instructions"]:
        if i.keyword == "RUN" and apt_installs(i.args):
            if not re.search(r"rm\s+-(rf|fr)\s+/var/lib/apt/lists", i.args):
                return "line %d: apt-get install without rm -rf /var/lib/apt/lists/* in the same RUN" % i.line
            if "apt-get update" not in i.args:
                return "line %d: apt-get install without apt-get update in the same RUN" % i.line


def rule_runtime_packages(c):
    pkgs = set()
    for i in final_body(c):
        if i.keyword == "RUN":
            for _, p in apt_installs(i.args):
                pkgs.update(p)
    extra = pkgs - ALLOWED_RUNTIME_PACKAGES
    if extra:
        return "runtime stage installs packages beyond the runtime libraries: %s" % ", ".join(sorted(extra))
    if "ca-certificates" not in pkgs:
        return "runtime stage lacks ca-certificates (TLS to Databricks)"


def rule_copy_binary(c):
    if len(c["stages"]) < 2:
        return "no build stage to copy from"
    build_names = {s["name"] for s in c["stages"][:-1] if s["name"]}
    build_names.update(str(n) for n in range(len(c["stages"]) - 1))
    for i in final_body(c):
        if i.keyword != "COPY":
            continue
        words = i.args.split()
        src = [w.split("=", 1)[1] for w in words if w.startswith("--from=")]
        rest = [w for w in words if not w.startswith("--")]
        if (src and src[0] in build_names and len(rest) >= 2
                and rest[0].endswith("/flyte-databricks-connector")
                and rest[-1] in (BINARY, "/usr/local/bin/")):
            return None
    return "runtime stage has no COPY --from=<build stage> .../flyte-databricks-connector %s" % BINARY


def rule_alias_links(c):
    """Every alias is made by `ln -s` of the binary's name in a runtime-stage RUN."""
    links = set()
    for i in final_body(c):
        if i.keyword != "RUN":
            continue
        form = exec_form(i.args)
        for cmd in [form] if form else shell_commands(i.args):
            if cmd and os.path.basename(cmd[0]) == "ln" and any(
                    w.startswith("-") and "s" in w for w in cmd[1:]):
                words = [w for w in cmd[1:] if not w.startswith("-")]
                if len(words) == 2 and os.path.basename(words[0]) == os.path.basename(BINARY):
                    links.add(words[1])
    missing = ALIASES - links
    if missing:
        return "runtime stage does not link %s to %s" % (", ".join(sorted(missing)),
                                                         os.path.basename(BINARY))


def rule_dockerignore(c):
    if c["ignore"] is None:
        return ".dockerignore is missing"
    missing = [p for p in MUST_IGNORE if not ignored(c["ignore"], p)]
    if missing:
        return ".dockerignore does not exclude %s" % ", ".join(missing)
    for src in c["build_sources"]:
        if ignored(c["ignore"], src):
            return ".dockerignore excludes %s, which the build stage COPYs" % src


RULES = [
    ("stages", rule_stages),
    ("build-base", rule_build_base),
    ("runtime-base", rule_runtime_base),
    ("pinned-tags", rule_pinned_tags),
    ("digest-pinned", rule_digest_pinned),
    ("build-runs-make", rule_build_runs_make),
    ("user-non-root", rule_user),
    ("expose", rule_expose),
    ("entrypoint-exec", rule_entrypoint),
    ("cmd-exec", rule_cmd),
    ("no-shell-at-run-time", rule_no_shell_after_user),
    ("no-remote-add", rule_no_remote_add),
    ("apt-no-recommends", rule_apt_no_recommends),
    ("apt-cleanup", rule_apt_cleanup),
    ("runtime-packages", rule_runtime_packages),
    ("copy-binary", rule_copy_binary),
    ("alias-links", rule_alias_links),
    ("dockerignore", rule_dockerignore),
]


def context(text, ignore_text):
    instructions = parse(text)
    stages = split_stages(instructions)
    build_sources = []
    for s in stages[:-1]:
        for i in s["body"]:
            if i.keyword == "COPY" and not any(w.startswith("--from") for w in i.args.split()):
                form = exec_form(i.args)
                words = form if form else [w for w in i.args.split() if not w.startswith("--")]
                build_sources.extend(w.rstrip("/") or "." for w in words[:-1])
    return {
        "instructions": instructions,
        "stages": stages,
        "stage_names": {s["name"] for s in stages if s["name"]},
        "ignore": read_ignore(ignore_text) if ignore_text is not None else None,
        "build_sources": build_sources,
    }


def evaluate(text, ignore_text):
    """Gives {rule: failure message or None}."""
    c = context(text, ignore_text)
    results = {}
    for name, fn in RULES:
        try:
            results[name] = fn(c)
        except Exception as e:  # a malformed file must fail, not crash the run
            results[name] = "check crashed: %r" % e
    return results, c


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, name):
        print("ok %s" % name)
        self.passed += 1

    def fail(self, name, why):
        print("FAIL %s: %s" % (name, why))
        self.failed += 1


def context_build(report, c):
    """Copies the build stage's COPY sources to a temp dir and runs make there."""
    name = "dockerfile-context-builds"
    if not shutil.which("make") or not shutil.which("pkg-config") or subprocess.run(
            ["pkg-config", "--exists", "grpc", "libprotobuf-c", "libcurl", "libcjson"],
            capture_output=True).returncode != 0:
        print("# skip %s: make or the -dev packages are not installed" % name)
        return
    with tempfile.TemporaryDirectory() as tmp:
        for src in c["build_sources"]:
            path = os.path.join(ROOT, src)
            if not os.path.exists(path):
                report.fail(name, "the build stage COPYs %s, which does not exist" % src)
                return
            dst = os.path.join(tmp, src)
            if os.path.isdir(path):
                shutil.copytree(path, dst, ignore=shutil.ignore_patterns("*.o", "*.d"))
            else:
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copy2(path, dst)
        jobs = str(os.cpu_count() or 1)
        try:
            r = subprocess.run(["make", "-j" + jobs], cwd=tmp, capture_output=True, text=True,
                               timeout=600)
        except subprocess.TimeoutExpired:
            report.fail(name, "`make` on the copied context took over 600 s")
            return
        binary = os.path.join(tmp, "build", "flyte-databricks-connector")
        if r.returncode != 0 or not os.access(binary, os.X_OK):
            tail = " | ".join((r.stdout + r.stderr).strip().splitlines()[-5:])
            report.fail(name, "`make` on the copied context (%s) failed: %s" % (
                ", ".join(c["build_sources"]), tail))
            return
    report.ok(name + " (" + ", ".join(c["build_sources"]) + ")")


# In-memory breaks of the real Dockerfile: (rule expected to fail, old, new).
# An old string that is not in the file fails the self-test, so the
# mutations stay in step with the Dockerfile.
MUTATIONS = [
    ("stages", "FROM debian:bookworm@sha256:${DEBIAN_BOOKWORM_SHA256} AS build\n", ""),
    ("build-base", "FROM debian:bookworm@", "FROM debian:bullseye@"),
    ("runtime-base", "FROM debian:bookworm-slim@", "FROM debian:bookworm@"),
    ("pinned-tags", "FROM debian:bookworm-slim@", "FROM debian@"),
    ("digest-pinned", "FROM debian:bookworm-slim@sha256:${DEBIAN_BOOKWORM_SLIM_SHA256}",
     "FROM debian:bookworm-slim"),
    ("digest-pinned", "FROM debian:bookworm@sha256:${DEBIAN_BOOKWORM_SHA256} AS build",
     "FROM debian:bookworm AS build"),
    ("digest-pinned", "ARG DEBIAN_BOOKWORM_SLIM_SHA256=abd67ffc", "ARG DEBIAN_BOOKWORM_SLIM_SHA256=bd67ffc"),
    ("digest-pinned", "ARG DEBIAN_BOOKWORM_SHA256=8130", "ARG DEBIAN_BOOKWORM_SHA256=REPLACE-ME"),
    ("build-runs-make", "RUN make -j", "RUN cmake -j"),
    ("user-non-root", "USER 65532:65532", "USER 0:0"),
    ("user-non-root", "USER 65532:65532", "USER nonroot"),
    ("user-non-root", "USER 65532:65532\n", ""),
    ("expose", "EXPOSE 8000 9090", "EXPOSE 8000"),
    ("entrypoint-exec", 'ENTRYPOINT ["/usr/local/bin/flyte-databricks-connector"]',
     "ENTRYPOINT /usr/local/bin/flyte-databricks-connector"),
    ("cmd-exec", 'CMD ["--listen", "0.0.0.0:8000"]', "CMD --listen 0.0.0.0:8000"),
    ("no-shell-at-run-time", "STOPSIGNAL SIGTERM", "RUN ls /\nSTOPSIGNAL SIGTERM"),
    ("no-shell-at-run-time", 'ENTRYPOINT ["/usr/local/bin/flyte-databricks-connector"]',
     'ENTRYPOINT ["/bin/sh", "-c", "/usr/local/bin/flyte-databricks-connector"]'),
    ("no-remote-add", "WORKDIR /src", "ADD https://example.com/x.tar.gz /x.tar.gz\nWORKDIR /src"),
    ("apt-no-recommends", "libgrpc29 libprotobuf-c1",
     "libgrpc29 libprotobuf-c1 --install-recommends"),
    ("apt-no-recommends", "--no-install-recommends \\\n        libgrpc29",
     "\\\n        libgrpc29"),
    ("apt-cleanup", "ca-certificates \\\n    && rm -rf /var/lib/apt/lists/*", "ca-certificates"),
    ("runtime-packages", "libmicrohttpd12 ca-certificates", "libmicrohttpd12 ca-certificates curl"),
    ("runtime-packages", "libmicrohttpd12 ca-certificates", "libmicrohttpd12"),
    ("copy-binary", "COPY --from=build /src/build/flyte-databricks-connector",
     "COPY build/flyte-databricks-connector"),
    ("alias-links", " \\\n    && ln -s flyte-databricks-connector /usr/local/bin/c0", ""),
    ("alias-links", "ln -s flyte-databricks-connector /usr/local/bin/pyflyte",
     "ln -s flyte-databricks-connector /usr/bin/pyflyte"),
    ("alias-links", "ln -s flyte-databricks-connector /usr/local/bin/pyflyte",
     "ln -s /usr/bin/python3 /usr/local/bin/pyflyte"),
]
IGNORE_MUTATIONS = [
    ("dockerignore", ".git\n", ""),
    ("dockerignore", "\nbuild\n", "\n"),
    ("dockerignore", ".dockerignore\n", ".dockerignore\ndaemon\n"),
]


def self_test(report, text, ignore_text):
    cases = [(r, old, new, False) for r, old, new in MUTATIONS]
    cases += [(r, old, new, True) for r, old, new in IGNORE_MUTATIONS]
    for n, (rule, old, new, on_ignore) in enumerate(cases, 1):
        name = "self-test-%02d-%s" % (n, rule)
        source = ignore_text if on_ignore else text
        if source is None or old not in source:
            report.fail(name, "mutation target %r is no longer in the file" % old)
            continue
        mutated = source.replace(old, new, 1)
        results, _ = evaluate(text if on_ignore else mutated, mutated if on_ignore else ignore_text)
        if results[rule]:
            report.ok(name + " (caught: " + results[rule] + ")")
        else:
            report.fail(name, "replacing %r by %r was not caught by rule %s" % (old, new, rule))
    fixtures = sorted(f for f in os.listdir(FIXTURES) if re.match(r"bad-.*\.Dockerfile$", f)) \
        if os.path.isdir(FIXTURES) else []
    if not fixtures:
        report.fail("self-test-fixtures", "no fixtures/bad-*.Dockerfile found")
    for f in fixtures:
        with open(os.path.join(FIXTURES, f)) as fh:
            fixture = fh.read()
        m = re.search(r"^# expect-fail: ([\w -]+)$", fixture, re.M)
        if not m:
            report.fail("self-test-" + f, "no '# expect-fail: RULE...' line")
            continue
        expected = m.group(1).split()
        results, _ = evaluate(fixture, ignore_text)
        missed = [r for r in expected if not results.get(r)]
        if missed:
            report.fail("self-test-" + f, "rules not failing: %s" % ", ".join(missed))
        else:
            report.ok("self-test-" + f + " (fails " + ", ".join(expected) + ")")


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    path = args[0] if args else os.path.join(ROOT, "Dockerfile")
    report = Report()
    try:
        with open(path) as fh:
            text = fh.read()
    except OSError as e:
        report.fail("dockerfile-read", str(e))
        print("%d passed, %d failed" % (report.passed, report.failed))
        return 1
    ignore_path = os.path.join(os.path.dirname(os.path.abspath(path)), ".dockerignore")
    ignore_text = open(ignore_path).read() if os.path.exists(ignore_path) else None

    results, c = evaluate(text, ignore_text)
    for name, _ in RULES:
        if results[name]:
            report.fail("dockerfile-" + name, results[name])
        else:
            report.ok("dockerfile-" + name)
    if "--no-context-build" not in argv and not results["dockerignore"]:
        context_build(report, c)
    if "--no-self-test" not in argv:
        self_test(report, text, ignore_text)
    print("%d passed, %d failed" % (report.passed, report.failed))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
