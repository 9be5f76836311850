#!/usr/bin/env bash
# Checks every recipe under deploy/ with local validators; nothing is deployed and nothing is
# contacted but the package registry (to install the validators, once, into .venv-deploy/).
#
#   YAML       every *.yml/*.yaml parses (CloudFormation tags like !Ref/!Sub accepted), yamllint
#   SAM        cfn-lint (with aws-sam-translator: the template as CloudFormation runs it)
#   Kubernetes kubernetes-validate --strict against the API schema of Kubernetes 1.27, plus:
#              CronJob with concurrencyPolicy: Forbid, a timeZone, `once --due`
#   SCF, FC    the fields the recipe depends on (no schema validator installs from a registry)
#   systemd    systemd-analyze verify on the units
#   container  the Dockerfile has FROM, COPY of dist/watchpost and an ENTRYPOINT
#   bootstrap  executable, `bash -n` clean, exec's `watchpost function --runtime ...`
#   configs    `watchpost validate` on every recipe's watchpost config, with placeholder
#              secrets, when a binary is at hand ($WATCHPOST_BIN, else dist/watchpost)
#
# Exit 0 when everything passed. A validator that can't be installed or found fails the run
# under CI=true and is reported as skipped otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-deploy
PYYAML_VERSION=6.0.3
YAMLLINT_VERSION=1.37.1
KUBERNETES_VALIDATE_VERSION=1.37.0
CFN_LINT_VERSION=1.58.0
SAM_TRANSLATOR_VERSION=1.115.0
K8S_VERSION=1.27.0   # the oldest Kubernetes the recipe supports (CronJob timeZone is stable there)

failed=0
step() { printf '\n==> %s\n' "$*"; }
ok() { printf 'ok: %s\n' "$*"; }
bad() { printf 'FAILED: %s\n' "$*" >&2; failed=$((failed + 1)); }
missing() {
  if [ "${CI:-}" = true ]; then
    bad "$* (a validator is missing; under CI=true that is a failure)"
  else
    printf 'SKIPPED: %s\n' "$*" >&2
  fi
}

step "validators (PyYAML, yamllint, kubernetes-validate, cfn-lint in $VENV/)"
PY="$VENV/bin/python"
if ! "$PY" -c 'import yaml, yamllint, kubernetes_validate, cfnlint, samtranslator' 2>/dev/null; then
  if ! command -v python3 >/dev/null; then
    missing "python3 not found: the YAML checks need Python 3 with venv"
  else
    if [ ! -x "$VENV/bin/pip" ]; then
      rm -rf "$VENV"
      python3 -m venv "$VENV" || { rm -rf "$VENV"; missing "python3 -m venv failed (apt-get install python3-venv)"; }
    fi
    if [ -x "$VENV/bin/pip" ]; then
      "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "PyYAML==$PYYAML_VERSION" "yamllint==$YAMLLINT_VERSION" \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" \
        "cfn-lint==$CFN_LINT_VERSION" "aws-sam-translator==$SAM_TRANSLATOR_VERSION" \
        || missing "pip could not install the validators"
    fi
  fi
fi
have_py=false
if "$PY" -c 'import yaml, yamllint, kubernetes_validate, cfnlint, samtranslator' 2>/dev/null; then
  have_py=true
  "$PY" -c 'import yaml, yamllint, cfnlint; print("PyYAML", yaml.__version__, "| yamllint", yamllint.__version__)'
  "$VENV/bin/cfn-lint" --version
fi

if $have_py; then
  step "YAML: every file parses"
  # SAM/CloudFormation short forms (!Ref, !Sub, ...) are kept as plain values.
  if "$PY" - <<'PY'; then ok "all YAML files parse"; else bad "YAML parse errors (above)"; fi
import pathlib, sys, yaml

class Loader(yaml.SafeLoader):
    pass

def any_tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)

Loader.add_multi_constructor("!", any_tag)
errors = 0
files = sorted(p for p in pathlib.Path("deploy").rglob("*") if p.suffix in (".yml", ".yaml"))
for path in files:
    try:
        docs = [d for d in yaml.load_all(path.read_text(), Loader=Loader) if d is not None]
        if not docs:
            raise ValueError("no document")
        print(f"  parses: {path}")
    except Exception as e:  # noqa: BLE001 - every parse problem is reported the same way
        print(f"  {path}: {e}", file=sys.stderr)
        errors += 1
sys.exit(1 if errors else 0)
PY

  step "YAML: yamllint"
  if "$VENV/bin/yamllint" --strict -d '{extends: default, rules: {line-length: {max: 120},
      document-start: disable, comments: {min-spaces-from-content: 1},
      truthy: {check-keys: false}}}' deploy/; then
    ok "yamllint"
  else
    bad "yamllint (above)"
  fi

  step "AWS SAM: cfn-lint deploy/aws-lambda/template.yaml"
  if "$VENV/bin/cfn-lint" --regions us-east-1 -- deploy/aws-lambda/template.yaml; then
    ok "cfn-lint"
  else
    bad "cfn-lint (above)"
  fi

  step "Kubernetes: kubernetes-validate --strict against $K8S_VERSION"
  if "$VENV/bin/kubernetes-validate" --strict -k "$K8S_VERSION" deploy/kubernetes/*.yaml; then
    ok "kubernetes-validate"
  else
    bad "kubernetes-validate (above)"
  fi

  step "recipes: the fields each one depends on"
  if "$PY" - <<'PY'; then ok "recipe fields"; else bad "recipe fields (above)"; fi
import os, pathlib, re, sys, yaml

class Loader(yaml.SafeLoader):
    pass

Loader.add_multi_constructor(
    "!",
    lambda l, s, n: {"!" + s: l.construct_scalar(n) if isinstance(n, yaml.ScalarNode)
                     else l.construct_sequence(n) if isinstance(n, yaml.SequenceNode)
                     else l.construct_mapping(n)})
problems = []

def load(path):
    return yaml.load(pathlib.Path(path).read_text(), Loader=Loader)

def expect(cond, what):
    print(f"  {'ok  ' if cond else 'FAIL'} {what}")
    if not cond:
        problems.append(what)

def fields(cron):
    return len(str(cron).split())

# Tencent SCF, Serverless Framework `scf` component.
scf = load("deploy/tencent-scf/serverless.yml")
inputs = scf.get("inputs", {})
expect(scf.get("component") == "scf", "tencent-scf: component: scf")
expect(bool(scf.get("name")), "tencent-scf: name")
expect(inputs.get("runtime") == "CustomRuntime", "tencent-scf: runtime CustomRuntime")
expect(inputs.get("memorySize") == 64, "tencent-scf: memorySize 64")
expect(inputs.get("timeout") == 20, "tencent-scf: timeout 20")
timers = [e["timer"] for e in inputs.get("events", []) if isinstance(e, dict) and "timer" in e]
expect(len(timers) >= 1, "tencent-scf: a timer event")
for t in timers:
    cron = t.get("parameters", {}).get("cronExpression", "")
    expect(fields(cron) == 7, f"tencent-scf: timer cron has 7 fields ({cron!r})")
env = inputs.get("environment", {}).get("variables", {})
expect("WATCHPOST_STORAGE" in env, "tencent-scf: WATCHPOST_STORAGE in the environment")

# AWS SAM.
sam = load("deploy/aws-lambda/template.yaml")
expect(sam.get("Transform") == "AWS::Serverless-2016-10-31", "aws-lambda: SAM transform")
functions = {k: v for k, v in sam.get("Resources", {}).items()
             if v.get("Type") == "AWS::Serverless::Function"}
expect(len(functions) == 1, "aws-lambda: one AWS::Serverless::Function")
makefile = pathlib.Path("deploy/aws-lambda/Makefile").read_text()
for logical_id, fn in functions.items():
    props = fn.get("Properties", {})
    expect(props.get("Runtime") in ("provided.al2023", "provided.al2"),
           f"aws-lambda: Runtime provided.al2023/al2 ({props.get('Runtime')})")
    expect(props.get("Architectures") == ["x86_64"], "aws-lambda: x86_64")
    events = props.get("Events", {})
    expect(any(e.get("Type") in ("Schedule", "ScheduleV2") for e in events.values()),
           "aws-lambda: an EventBridge Schedule event")
    expect("WATCHPOST_STORAGE" in props.get("Environment", {}).get("Variables", {}),
           "aws-lambda: WATCHPOST_STORAGE in the environment")
    expect(fn.get("Metadata", {}).get("BuildMethod") == "makefile", "aws-lambda: BuildMethod makefile")
    expect(re.search(rf"^build-{re.escape(logical_id)}:", makefile, re.M) is not None,
           f"aws-lambda: Makefile has the target build-{logical_id}")

# Alibaba FC 3.0, Serverless Devs `fc3` component.
s = load("deploy/alibaba-fc/s.yaml")
expect(str(s.get("edition")) == "3.0.0", "alibaba-fc: edition 3.0.0")
resources = s.get("resources", {})
expect(len(resources) >= 1, "alibaba-fc: a resource")
for name, res in resources.items():
    props = res.get("props", {})
    expect(res.get("component") == "fc3", f"alibaba-fc: {name} uses the fc3 component")
    expect(str(props.get("runtime", "")).startswith("custom"), f"alibaba-fc: {name} custom runtime")
    command = props.get("customRuntimeConfig", {}).get("command", [])
    expect(command == ["/code/bootstrap"], f"alibaba-fc: {name} starts /code/bootstrap")
    expect(props.get("customRuntimeConfig", {}).get("port") == 9000, f"alibaba-fc: {name} port 9000")
    expect("WATCHPOST_STORAGE" in props.get("environmentVariables", {}),
           f"alibaba-fc: {name} WATCHPOST_STORAGE in the environment")
    timers = [t for t in props.get("triggers", []) if t.get("triggerType") == "timer"]
    expect(len(timers) >= 1, f"alibaba-fc: {name} has a timer trigger")
    for t in timers:
        cfg = t.get("triggerConfig", {})
        cron = str(cfg.get("cronExpression", ""))
        expect(cron.startswith("@every") or fields(cron) == 6,
               f"alibaba-fc: timer cron is @every or 6 fields ({cron!r})")
        expect(cfg.get("enable") is True, "alibaba-fc: timer enabled")

# Kubernetes: beyond the schema, what the recipe promises.
for doc in yaml.load_all(pathlib.Path("deploy/kubernetes/cronjob.yaml").read_text(), Loader=Loader):
    if not doc or doc.get("kind") != "CronJob":
        continue
    spec = doc.get("spec", {})
    expect(doc.get("apiVersion") == "batch/v1", "kubernetes: CronJob batch/v1")
    expect(spec.get("concurrencyPolicy") == "Forbid", "kubernetes: concurrencyPolicy: Forbid")
    expect(bool(spec.get("timeZone")), "kubernetes: timeZone set")
    expect(fields(spec.get("schedule", "")) == 5, "kubernetes: 5-field schedule")
    pod = spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", {})
    args = pod.get("containers", [{}])[0].get("args", [])
    expect(args[:2] == ["once", "--due"], f"kubernetes: runs once --due ({args})")
    volumes = [v for v in pod.get("volumes", []) if "configMap" in v]
    expect(len(volumes) == 1, "kubernetes: config from a ConfigMap")
    env_from = pod.get("containers", [{}])[0].get("envFrom", [])
    expect(any("secretRef" in e for e in env_from), "kubernetes: secrets from a Secret")

sys.exit(1 if problems else 0)
PY
fi

step "systemd: systemd-analyze verify"
if command -v systemd-analyze >/dev/null; then
  # verify insists that ExecStart's binary exists and is executable ("Command
  # /usr/local/bin/watchpost is not executable: No such file or directory"): check copies of
  # the units whose ExecStart names a stand-in executable in a temporary directory instead.
  units="$(mktemp -d)"
  trap 'rm -rf "$units"' EXIT
  printf '#!/bin/sh\nexit 0\n' >"$units/watchpost"
  chmod 755 "$units/watchpost"
  for unit in deploy/systemd/*.service deploy/systemd/*.timer; do
    sed "s#/usr/local/bin/watchpost#$units/watchpost#g" "$unit" >"$units/$(basename "$unit")"
  done
  if systemd-analyze verify "$units"/*.service "$units"/*.timer; then
    ok "systemd-analyze verify: $(cd deploy/systemd && echo *.service *.timer)"
  else
    bad "systemd-analyze verify (above)"
  fi
else
  missing "systemd-analyze not found (Debian/Ubuntu: apt-get install systemd)"
fi

step "container: Dockerfile"
dockerfile=deploy/container/Dockerfile
if grep -qE '^FROM [^ ]+' "$dockerfile" \
  && grep -qE '^COPY dist/watchpost ' "$dockerfile" \
  && grep -qE '^ENTRYPOINT \["/usr/local/bin/watchpost"\]' "$dockerfile"; then
  ok "$dockerfile: FROM $(sed -n 's/^FROM //p' "$dockerfile"), COPY dist/watchpost, ENTRYPOINT"
else
  bad "$dockerfile needs FROM, COPY dist/watchpost ... and ENTRYPOINT [\"/usr/local/bin/watchpost\"]"
fi

step "bootstrap scripts"
for boot in deploy/tencent-scf/bootstrap deploy/aws-lambda/bootstrap deploy/alibaba-fc/code/bootstrap; do
  problems=""
  [ -x "$boot" ] || problems="$problems not executable (chmod 755; git keeps the mode);"
  bash -n "$boot" || problems="$problems bash -n fails;"
  head -n 1 "$boot" | grep -qE '^#!/bin/(ba)?sh$' || problems="$problems first line is not #!/bin/sh or #!/bin/bash;"
  grep -qE '^exec \./watchpost function --runtime (scf|lambda|http) -c \./watchpost\.yaml$' "$boot" \
    || problems="$problems does not exec ./watchpost function --runtime ... -c ./watchpost.yaml;"
  if [ -z "$problems" ]; then ok "$boot"; else bad "$boot:$problems"; fi
done

step "watchpost validate on each recipe's config"
bin="${WATCHPOST_BIN:-dist/watchpost}"
if [ -x "$bin" ]; then
  configs="$(mktemp -d)"
  trap 'rm -rf "${units:-}" "$configs"' EXIT
  # The ConfigMap's watchpost.yaml, as the pod sees it.
  if $have_py; then
    "$PY" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["data"]["watchpost.yaml"], end="")' \
      deploy/kubernetes/configmap.yaml >"$configs/kubernetes.yaml"
  fi
  for config in deploy/tencent-scf/watchpost.yaml deploy/aws-lambda/watchpost.yaml \
    deploy/alibaba-fc/code/watchpost.yaml deploy/systemd/watchpost.yaml "$configs/kubernetes.yaml"; do
    [ -f "$config" ] || { bad "$config is missing"; continue; }
    # Placeholders for the secrets the configs name; validate opens no store and no socket.
    label="$config"
    [ "$config" != "$configs/kubernetes.yaml" ] || label="deploy/kubernetes/configmap.yaml (data.watchpost.yaml)"
    if out="$(env WATCHPOST_STORAGE='postgres://watchpost:placeholder@127.0.0.1:5432/watchpost?sslmode=disable' \
      WECOM_KEY=placeholder-key SLACK_HOOK=T000/B000/placeholder DINGTALK_TOKEN=placeholder-token \
      SMTP_PASSWORD=placeholder-password "$bin" validate -c "$config" 2>&1)"; then
      ok "$label: $(printf '%s' "$out" | grep '^ok' | sed 's/ in .*//' || true)"
    else
      printf '%s\n' "$out" >&2
      bad "watchpost validate -c $label"
    fi
  done
else
  missing "no watchpost binary to validate the configs with (set WATCHPOST_BIN or run scripts/release.sh)"
fi

if [ "$failed" -ne 0 ]; then
  printf '\ndeploy/check.sh: %d check(s) FAILED\n' "$failed" >&2
  exit 1
fi
printf '\ndeploy/check.sh: all checks passed\n'
