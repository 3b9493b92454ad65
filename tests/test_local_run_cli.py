"""`tao-aml run NAME --local`: the whole pipeline on this machine, from the YAML Azure ML runs.

With --no-docker the steps run with the TAO stand-ins on PATH; otherwise a fake `docker` checks every
`docker build` and `docker run` command line (image, mounts, `--gpus` on GPU steps only, the NGC key by
name only) and then runs the step as the container would. Resuming is tested after a failed step and
after the run itself is killed.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import re
import shlex
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coco_fixtures import make_coco_zips
from http_server import add_ngc_model
from tao_aml.cli import build_parser, main
from tao_aml.local.local_run import Docker, LocalRunner, check_local, local_inputs
from tao_aml.repo.pipelines import Pipeline, resolve_settings
from tao_aml.repo.profiles import profile_assignments
from tao_aml.simulate import invocations, standin_path
from wider_fixtures import make_wider_download, make_wider_zips, random_images

REPO = Path(__file__).resolve().parents[1]
MODEL = "nvidia/tao/facenet:unpruned_v2.0"
NGC_KEY = "ngc-secret-0123456789"
FACENET = Pipeline.load("facenet").component
ORDER = FACENET.topological_order()
# Read from the YAML: GPU steps are those whose compute is the GPU compute; a step's image is its environment's.
GPU_STEPS = {name for name, step in FACENET.jobs.items() if step.compute == "${{parent.inputs.gpu_compute}}"}
STEP_IMAGES = {name: f"tao-aml/{Path(step.component.raw['environment']).parent.name}:0.1.0"
               for name, step in FACENET.jobs.items()}
IMAGES = {"tao-aml/tao_data:0.1.0": None, "tao-aml/tao_tf1:0.1.0": "tf1", "tao-aml/tao_deploy:0.1.0": "deploy"}


def label(step: str) -> str:
    """How the progress lines name a step: `[ 8/19] train`."""
    return f"[{ORDER.index(step) + 1:>{len(str(len(ORDER)))}}/{len(ORDER)}] {step}"


# A machine whose `detectnet_v2` is TAO 5.0 TF1's for Keras models and TAO Deploy's for TensorRT engines
# (`gen_trt_engine`, and evaluate and inference of a .engine): both containers' CLIs, for --no-docker.
TAO_MACHINE_DETECTNET = r'''#!{python}
import os, sys
args = sys.argv[1:]
model = next((value for flag, value in zip(args, args[1:]) if flag in ("-m", "--model_path")), "")
kind = "deploy" if args[:1] == ["gen_trt_engine"] or model.endswith(".engine") else "tf1"
script = os.path.join({standins!r}, kind, "detectnet_v2")
os.execv(sys.executable, [sys.executable, script, *sys.argv[1:]])
'''

# Docker's CLI as `tao-aml run` must use it. `docker run` is checked flag by flag and then runs the step as the
# container would: only the variables given with --env (by value, or by name from this environment), and the
# image's CLIs (the stand-ins of its container) on PATH.
FAKE_DOCKER = r'''#!{python}
import json, os, re, shlex, signal, subprocess, sys
from pathlib import Path

IMAGES = {images!r}
STANDINS = {standins!r}
args = sys.argv[1:]
log = os.environ["FAKE_DOCKER_LOG"]


def record(entry):
    with open(log, "a") as handle:
        handle.write(json.dumps(entry) + "\n")


if args[:1] == ["info"]:
    if os.environ.get("FAKE_DOCKER_DAEMON") == "down":
        print("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
              file=sys.stderr)
        sys.exit(1)
    assert args == ["info", "--format", "{{{{.ServerVersion}}}}"], args
    print("27.3.1")
    sys.exit(0)
if args[:1] == ["build"]:
    assert args[1] == "--tag" and args[2] in IMAGES and len(args) == 4, args
    assert (Path(args[3]) / "Dockerfile").is_file(), "the last argument is the build context"
    assert Path(args[3]).name == "context" and Path(args[3]).parent.name == args[2].split("/")[1].split(":")[0]
    record({{"build": args[2]}})
    sys.exit(0)

assert args[:3] == ["run", "--rm", "--init"], args  # --init: signals reach the step (PID 1 would ignore SIGTERM)
secret = os.environ.get("NGC_API_KEY")
assert not secret or all(secret not in arg for arg in args), "the NGC key is on docker's command line"
flags, i = [], 3
while args[i].startswith("--"):
    flags.append((args[i], args[i + 1]))
    i += 2
image, shell, dash_c, command = args[i:]
assert (shell, dash_c) == ("bash", "-c") and image in IMAGES, args[i:]
built = [json.loads(line).get("build") for line in open(log)]
assert image in built, f"{{image}} was run before it was built"
known = {{"--name", "--shm-size", "--ulimit", "--gpus", "--user", "--volume", "--env", "--workdir"}}
assert {{flag for flag, _ in flags}} <= known, flags
values = {{}}
for flag, value in flags:
    values.setdefault(flag, []).append(value)
# TAO containers get the /dev/shm their Azure ML step gets (components resources.shm_size); data steps docker's own.
assert values.get("--shm-size") == (["16g"] if IMAGES[image] else None), (image, values.get("--shm-size"))
assert values["--ulimit"] == ["memlock=-1", "stack=67108864"]
assert values.get("--gpus", ["all"]) == ["all"]
assert values["--user"] == [f"{{os.getuid()}}:{{os.getgid()}}"]
step = re.fullmatch(r"tao-aml-[0-9a-f]{{8}}-([a-z0-9_]+)", values["--name"][0]).group(1)
mounts = {{}}
for volume in values["--volume"]:
    source, target, mode = volume.split(":")
    assert source == target and os.path.isabs(source) and os.path.exists(source) and mode in ("ro", "rw"), volume
    mounts[source] = mode
rw = [path for path, mode in mounts.items() if mode == "rw"]
store = os.environ.get("MLFLOW_TRACKING_URI", "").removeprefix("file://")
assert Path(rw[0]).name == step and rw[1:] in ([], [store]), f"only the step's (and MLflow's) is writable: {{rw}}"


def mounted(path):
    return any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts)


workdir = values["--workdir"][0]
assert mounted(workdir) and mounts[workdir] == "ro", workdir
for token in shlex.split(command):
    for path in re.findall(r"(?:^|[=,])(/[^,]*)", token):
        assert mounted(path), f"{{path}} is not mounted into the container of {{step}}"
clis = [os.path.join(STANDINS, IMAGES[image])] if IMAGES[image] else []
env = {{"PATH": os.pathsep.join(clis + [os.path.dirname(sys.executable), "/usr/bin:/bin"])}}
names = []
for item in values["--env"]:
    name, sep, value = item.partition("=")
    if sep:
        env[name] = value
    else:
        names.append(name)
        env[name] = os.environ[name]
assert env["TELEMETRY_OPT_OUT"] == "yes" and env["HOME"] == "/tmp" and env["PYTHONPATH"] == workdir, env
env.update({{k: v for k, v in os.environ.items() if k.startswith("TAO_STANDIN_")}})  # the stand-ins' own plumbing
record({{"step": step, "image": image, "gpus": "--gpus" in values, "mounts": mounts, "names": names}})
if os.environ.get("FAKE_DOCKER_KILL_RUN_AT") == step:
    os.kill(os.getppid(), signal.SIGKILL)  # the whole `tao-aml run` dies while this step runs
    sys.exit(137)
sys.exit(subprocess.call(["bash", "-c", command], cwd=workdir, env=env))
'''


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture
def served(http_server):
    zips = make_wider_zips(http_server.root, random_images(6, seed=3), random_images(4, seed=4))
    add_ngc_model(http_server, MODEL, {"model.tlt": b"pretrained weights"})
    urls = ",".join(http_server.url("/" + path.name) for path in zips.values())
    return http_server, urls


@pytest.fixture
def tao_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH of a TAO machine (the stand-ins), for --no-docker; returns the stand-ins' call log."""
    bin_dir = tmp_path / "tao_bin"
    bin_dir.mkdir()
    standins = str(Path(standin_path("tf1")).parent)
    executable(bin_dir / "detectnet_v2", TAO_MACHINE_DETECTNET.format(python=sys.executable, standins=standins))
    (bin_dir / "bpnet").symlink_to(Path(standin_path("tf1")) / "bpnet")
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), os.path.dirname(sys.executable), os.environ["PATH"]]))
    monkeypatch.setenv("TAO_STANDIN_LOG", str(tmp_path / "tao.jsonl"))
    return tmp_path / "tao.jsonl"


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake `docker` first on PATH; returns its log (one JSON line per build and per container)."""
    bin_dir = tmp_path / "docker_bin"
    bin_dir.mkdir()
    standins = str(Path(standin_path("tf1")).parent)
    executable(bin_dir / "docker", FAKE_DOCKER.format(python=sys.executable, images=IMAGES, standins=standins))
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), os.environ["PATH"]]))
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(tmp_path / "docker.jsonl"))
    monkeypatch.setenv("TAO_STANDIN_LOG", str(tmp_path / "tao.jsonl"))
    (tmp_path / "docker.jsonl").touch()
    return tmp_path / "docker.jsonl"


def run_args(workdir: Path, urls: str, *extra: str) -> list[str]:
    # The test server's zips are not WIDER FACE's own: no sizes or checksums to check.
    return ["run", "facenet", "--local", "--profile", "smoke", "--workdir", str(workdir), "--set", f"wider_urls={urls}",
            "--set", "wider_sizes=,,", "--set", "wider_sha256=,,", *extra, "--root", str(REPO)]


def calls(log: Path, since: int = 0) -> list[tuple[str, str]]:
    return [(call["kind"], call["task"]) for call in invocations(log)[since:]]


def state(workdir: Path, step: str) -> str:
    return json.loads((workdir / step / "step.json").read_text())["status"]


def assert_report_and_model(out: str, workdir: Path) -> None:
    """The report and the model folder the cloud run writes, where the summary says they are."""
    report, model = workdir / "report" / "report", workdir / "register_model" / "model"
    assert re.search(rf"^  report +{re.escape(str(report))}$", out, re.M)
    assert re.search(rf"^  model +{re.escape(str(model))}$", out, re.M)
    assert [row["model"] for row in json.loads((report / "report.json").read_text())["accuracy"]] == [
        "pretrained", "trained", "pruned + retrained"]
    assert (report / "report.md").is_file()
    card = json.loads((model / "model_card.json").read_text())
    assert card["name"] == "tao-facenet" and {"model.onnx", "model.engine", "labels.txt"} <= set(card["files"])


def test_no_docker_runs_every_step_resumes_a_failed_one_and_reruns_from_a_step(
    tmp_path: Path, served, tao_machine: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    server, urls = served
    workdir = tmp_path / "work"
    args = run_args(workdir, urls, "--no-docker", "--set", "train_epochs=2",
                    "--set", "train.training_config.checkpoint_interval=1")
    # TAO dies (as if OOM-killed) after train's first epoch and checkpoint.
    monkeypatch.setenv("TAO_STANDIN_KILL_AFTER_EPOCHS", "1")
    monkeypatch.setenv("TAO_AML_NGC_API_BASE", server.base_url)
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert re.search(rf"^{re.escape(label('train'))}: started \(GPU step\); log .*/work/train/step\.log$", out, re.M)
    assert re.search(rf"^{re.escape(label('evaluate_pretrained'))}: done in \d+s$", out, re.M)
    assert re.search(r"^error: step train failed with exit code [1-9]\d* after \d+s$", err, re.M)
    assert f"last lines of {workdir}/train/step.log:" in err and "the same command runs it again" in err
    done = ORDER[:ORDER.index("train")]
    assert [state(workdir, step) for step in done] == ["complete"] * len(done) and state(workdir, "train") == "failed"
    assert not (workdir / "evaluate_trained").exists()
    first = len(invocations(tao_machine))

    monkeypatch.delenv("TAO_STANDIN_KILL_AFTER_EPOCHS")
    assert main(args) == 0
    out = capsys.readouterr().out
    for step in done:
        assert f"{label(step)}: complete from an earlier run, skipped" in out
    assert f"{label('train')}: an earlier run did not finish it: running it again on the outputs it left" in out
    assert calls(tao_machine, first)[0] == ("tf1", "train")  # no dataset_convert, no evaluate again
    assert "resuming from checkpoint" in (workdir / "train" / "step.log").read_text()
    assert all(state(workdir, step) == "complete" for step in ORDER)
    summary = f"{len(ORDER) - len(done)} steps run, {len(done)} complete from earlier runs"
    assert re.search(rf"^facenet: done in \d+s, {summary}$", out, re.M)
    assert_report_and_model(out, workdir)
    card = (workdir / "register_model" / "model" / "model_card.json").read_text()

    second = len(invocations(tao_machine))
    assert main([*args, "--from", "export"]) == 0
    out = capsys.readouterr().out
    again = calls(tao_machine, second)
    assert again[0] == ("tf1", "export") and ("deploy", "gen_trt_engine") in again
    assert all(kind == "deploy" for kind, _ in again[1:])
    forced = ORDER[ORDER.index("export"):]
    for step in forced:
        assert f"{label(step)}: forced by --from: starting from empty folders" in out
    assert f"{len(forced)} steps run, {len(ORDER) - len(forced)} complete from earlier runs" in out
    assert json.loads((workdir / "register_model" / "model" / "model_card.json").read_text())["files"].keys() == \
        json.loads(card)["files"].keys()


def test_docker_runs_each_step_in_its_image_and_continues_after_the_run_is_killed(
    tmp_path: Path, served, fake_docker: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    server, urls = served
    server.require_bearer("/v2/models/", NGC_KEY)  # reaches the NGC step only through `--env NGC_API_KEY`
    monkeypatch.setenv("NGC_API_KEY", NGC_KEY)
    monkeypatch.setenv("TAO_AML_NGC_API_BASE", server.base_url)
    workdir = tmp_path / "work"
    killed = subprocess.run(
        [sys.executable, "-m", "tao_aml.cli", *run_args(workdir, urls)], capture_output=True, text=True,
        env={**os.environ, "FAKE_DOCKER_KILL_RUN_AT": "prune"}, timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert f"{label('prune')}: started (GPU step in tao-aml/tao_tf1:0.1.0 with --gpus all)" in killed.stdout
    done = ORDER[:ORDER.index("prune")]
    assert [state(workdir, step) for step in done] == ["complete"] * len(done) and state(workdir, "prune") == "running"
    before = [json.loads(line) for line in fake_docker.read_text().splitlines()]
    assert [entry["build"] for entry in before if "build" in entry] == [
        "tao-aml/tao_data:0.1.0", "tao-aml/tao_tf1:0.1.0", "tao-aml/tao_deploy:0.1.0"]

    assert main(run_args(workdir, urls)) == 0
    out = capsys.readouterr().out
    assert f"{label('prune')}: an earlier run did not finish it" in out
    entries = [json.loads(line) for line in fake_docker.read_text().splitlines()][len(before):]
    # Only the images of the steps that run again are built; the complete steps get no container.
    assert [entry["build"] for entry in entries if "build" in entry] == [
        "tao-aml/tao_tf1:0.1.0", "tao-aml/tao_deploy:0.1.0", "tao-aml/tao_data:0.1.0"]
    containers = [entry for entry in before + entries if "step" in entry]
    assert [entry["step"] for entry in containers] == [*done, "prune", *ORDER[len(done):]]
    for entry in containers:
        assert entry["image"] == STEP_IMAGES[entry["step"]], entry
        assert entry["gpus"] == (entry["step"] in GPU_STEPS), entry
        assert {"NGC_API_KEY", "TAO_AML_NGC_API_BASE"} <= set(entry["names"]), entry
        assert entry["mounts"][str(REPO / "src")] == "ro"
    train = next(entry for entry in containers if entry["step"] == "train")
    assert train["mounts"][str(workdir / "tfrecords_train" / "tfrecords")] == "ro"
    assert all(call["ok"] for call in invocations(tmp_path / "tao.jsonl"))
    assert any(r.headers.get("authorization") == f"Bearer {NGC_KEY}" for r in server.requests)
    assert NGC_KEY not in out + killed.stdout + killed.stderr
    assert_report_and_model(out, workdir)


def test_bodypose_runs_in_docker_with_every_path_it_reads_mounted(
    tmp_path: Path, http_server, fake_docker: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """The bpnet steps build a data root of links to images and masks of earlier steps: all must be mounted."""
    zips = make_coco_zips(http_server.root, train=8, val=4)
    add_ngc_model(http_server, "nvidia/tao/bodyposenet:trainable_v1.0", {"model.tlt": b"pretrained weights"})
    monkeypatch.setenv("TAO_AML_NGC_API_BASE", http_server.base_url)
    workdir = tmp_path / "work"
    urls = ",".join(http_server.url("/" + name) for name in zips)
    assert main(["run", "bodypose", "--local", "--profile", "smoke", "--workdir", str(workdir),
                 "--set", f"coco_urls={urls}", "--set", "coco_sizes=,,", "--set", "calibration_images=3",
                 "--root", str(REPO)]) == 0
    steps = Pipeline.load("bodypose").component.jobs
    containers = [json.loads(line) for line in fake_docker.read_text().splitlines() if '"step"' in line]
    assert [entry["step"] for entry in containers] == Pipeline.load("bodypose").component.topological_order()
    for entry in containers:
        step = steps[entry["step"]]
        assert entry["gpus"] == (step.compute == "${{parent.inputs.gpu_compute}}"), entry
        assert entry["image"] == f"tao-aml/{Path(step.component.raw['environment']).parent.name}:0.1.0", entry
    assert all(call["ok"] for call in invocations(tmp_path / "tao.jsonl"))
    out = capsys.readouterr().out
    assert (workdir / "report" / "report" / "report.md").is_file()
    assert json.loads((workdir / "register_model" / "model" / "model_card.json").read_text())["name"] == "tao-bodypose"
    assert re.search(rf"^  model +{re.escape(str(workdir / 'register_model' / 'model'))}$", out, re.M)


def test_a_data_input_from_this_machine_replaces_the_download(
    tmp_path: Path, tao_machine: Path, http_server
) -> None:
    wider = make_wider_download(tmp_path / "wider", random_images(3, seed=5), random_images(2, seed=6))
    pipeline = Pipeline.load("facenet")
    settings = resolve_settings(pipeline, [f"wider_urls={http_server.url('/WIDER_val.zip')}"])
    data = local_inputs(pipeline, [f"wider_data={tmp_path}/../{tmp_path.name}/wider"])
    assert data == {"wider_data": wider.resolve()}
    LocalRunner(pipeline, settings, tmp_path / "work", data).run(only=["download_wider", "convert_val"])
    assert json.loads((tmp_path / "work" / "convert_val" / "kitti" / "summary.json").read_text())["images"] == 2
    assert not http_server.requests


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--set", "train_epoch=3"], 2, "--set train_epoch: no pipeline input 'train_epoch'; did you mean "
                                        "train_epochs? (pipeline inputs: gpu_compute"),
        (["--set", "train.training_config.num_epoch=3"], 2, "--set train.training_config.num_epoch=3: num_epoch is "
                                                             "not a field of training_config"),
        (["--set", "nodes=2"], 2, "--set nodes=2: a local run has this one machine"),
        (["--set", "spot=true"], 2, "--set spot: a setting of Azure ML runs (tao-aml submit), not of a local run"),
        (["--from", "trian"], 2, "--from trian: no step 'trian' in facenet; its steps, in the order they run: "
                                 "download_wider, convert_train"),
        (["--input", "wider_data=/no/such/folder"], 2, "--input wider_data=/no/such/folder: no such folder"),
        (["--input", "key=/tmp"], 2, "--input key: no data input 'key' in facenet (data inputs: specs, wider_data)"),
        (["--profile", "quick"], 2, "no profile 'quick'; profiles: full, smoke"),
    ],
)
def test_bad_settings_stop_before_anything_is_written(
    tmp_path: Path, fake_docker: Path, capsys: pytest.CaptureFixture, extra: list[str], code: int, message: str
) -> None:
    workdir = tmp_path / "work"
    assert main(["run", "facenet", "--local", "--workdir", str(workdir), *extra, "--root", str(REPO)]) == code
    assert message in capsys.readouterr().err
    assert not workdir.exists()
    assert fake_docker.read_text() == ""


def test_bad_pipeline_workdir_or_docker_is_refused_with_a_clear_message(
    tmp_path: Path, fake_docker: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    workdir = tmp_path / "work"
    assert main(["run", "facenets", "--local", "--workdir", str(workdir)]) == 2
    assert "no pipeline 'facenets'; known pipelines: bodypose, detectnet_v2, facenet" in capsys.readouterr().err

    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    assert main(["run", "facenet", "--local", "--workdir", str(a_file)]) == 2
    assert f"--workdir {a_file}: is a file; give a folder" in capsys.readouterr().err

    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    assert main(["run", "facenet", "--local", "--workdir", str(tmp_path / "photos")]) == 2
    assert "not empty and not the folder of a tao-aml run (it has no run.json)" in capsys.readouterr().err

    (workdir).mkdir()
    (workdir / "run.json").write_text('{"pipeline": "bodypose"}\n')
    assert main(["run", "facenet", "--local", "--workdir", str(workdir)]) == 2
    assert "holds a run of pipeline 'bodypose'" in capsys.readouterr().err

    (workdir / "run.json").write_text('{"pipeline": "facenet"}\n')
    with open(workdir / "run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a run using the workdir
        assert main(["run", "facenet", "--local", "--workdir", str(workdir)]) == 2
    assert f"--workdir {workdir}: another tao-aml run is using it" in capsys.readouterr().err
    assert sorted(path.name for path in workdir.iterdir()) == ["run.json", "run.lock"]

    monkeypatch.setenv("FAKE_DOCKER_DAEMON", "down")
    assert main(["run", "facenet", "--local", "--workdir", str(tmp_path / "new")]) == 3
    err = capsys.readouterr().err
    assert "docker's daemon does not answer (`docker info`: Cannot connect to the Docker daemon" in err
    assert "--no-docker" in err

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["run", "facenet", "--local", "--workdir", str(tmp_path / "new")]) == 3
    err = capsys.readouterr().err
    assert "error: docker is not on PATH" in err and "add --no-docker" in err
    assert not (tmp_path / "new").exists()
    assert fake_docker.read_text() == ""


def test_run_needs_local(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["run", "facenet", "--workdir", "w"])
    assert stop.value.code == 2 and "the following arguments are required: --local" in capsys.readouterr().err


def test_a_local_mlflow_store_is_named_by_its_path_and_mounted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    pipeline = Pipeline.load("facenet")
    runner = LocalRunner(pipeline, resolve_settings(pipeline, []), tmp_path / "work", docker=Docker(REPO),
                         env={"MLFLOW_TRACKING_URI": "mlruns"})
    assert runner.env["MLFLOW_TRACKING_URI"] == (tmp_path / "mlruns").as_uri()  # steps run from their code folder
    argv = runner.executor.argv(runner.launch(pipeline.component.jobs["download_wider"]), runner.env)
    assert f"{tmp_path}/mlruns:{tmp_path}/mlruns:rw" in argv
    assert argv[argv.index("MLFLOW_TRACKING_URI") - 1] == "--env"  # the value stays off the command line
    assert not any(arg.startswith("MLFLOW_TRACKING_URI=") for arg in argv)


# A step that has started a TAO process and stops on Ctrl-C as TAO's Python does; it installs its own SIGINT
# handler, so it gets SIGINT even where the test runs with SIGINT ignored (a background job inherits that).
STEP_WITH_A_CHILD = r"""
import os, signal, subprocess, sys, time
folder = sys.argv[1]
child = subprocess.Popen(["sleep", "300"])


def stopped(number, frame):
    with open(os.path.join(folder, "got"), "w") as handle:
        handle.write(signal.Signals(number).name)
    sys.exit(130)


signal.signal(signal.SIGINT, stopped)
with open(os.path.join(folder, "child.pid"), "w") as handle:
    handle.write(str(child.pid))
time.sleep(300)
"""


def alive(pid: int) -> bool:
    """Whether a process is still there a while after it was signalled (a zombie waiting to be reaped is not).

    A signal is delivered when the kernel next schedules its target, so a killed process may look alive for a
    moment on a busy machine; it counts as alive only if it is still there after 10 s.
    """
    for _ in range(200):
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return False
        except FileNotFoundError:
            return False
        time.sleep(0.05)
    return True


def test_ctrl_c_stops_the_step_and_leaves_it_unfinished(tmp_path: Path) -> None:
    def progress(line: str) -> None:
        if "running for" in line and (tmp_path / "child.pid").exists():
            raise KeyboardInterrupt  # as if Ctrl-C reached only `tao-aml run` (kill -INT)

    script = tmp_path / "step.py"
    script.write_text(STEP_WITH_A_CHILD)
    pipeline = Pipeline.load("facenet")
    runner = LocalRunner(pipeline, resolve_settings(pipeline, []), tmp_path, progress=progress, heartbeat_s=0.05)
    launch = dataclasses.replace(runner.launch(pipeline.component.jobs["download_wider"]),
                                 command=shlex.join([sys.executable, str(script), str(tmp_path)]))
    with pytest.raises(KeyboardInterrupt):
        runner.execute(launch, "[1/19] download_wider", keep=False)
    assert (tmp_path / "got").read_text() == "SIGINT"  # the step was told first, as TAO is by a terminal's Ctrl-C
    assert not alive(int((tmp_path / "child.pid").read_text()))  # and nothing of it is left running
    state = json.loads((launch.folder / "step.json").read_text())
    assert state["status"] == "failed" and state["interrupted"] is True


def test_no_docker_says_in_one_line_what_this_machine_lacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """No TAO CLI on PATH, and a `python` for the steps that cannot import OpenCV (the WIDER converter's)."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "cv2.py").write_text("raise ImportError('No module named cv2')\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    executable(bin_dir / "python", f'#!/bin/sh\nPYTHONPATH="$PYTHONPATH:{shadow}" exec {sys.executable} "$@"\n')
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), "/usr/bin", "/bin"]))
    workdir = tmp_path / "work"
    assert main(["run", "facenet", "--local", "--no-docker", "--workdir", str(workdir), "--root", str(REPO)]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --no-docker needs this machine to be the TAO environment: ")
    assert "`detectnet_v2` (TAO 5.0's CLI, which steps of tao_tf1 run) is not on PATH" in err
    assert "the steps of tao_data cannot start: `python` (" in err and "cannot import cv2: ImportError" in err
    assert "tao-aml rehearse" in err
    assert sorted(path.name for path in workdir.iterdir()) == ["run.json", "run.lock"]  # no step started


def test_a_long_step_shows_its_elapsed_time_and_last_log_line(tmp_path: Path) -> None:
    pipeline = Pipeline.load("facenet")
    lines: list[str] = []
    runner = LocalRunner(pipeline, resolve_settings(pipeline, []), tmp_path, progress=lines.append, heartbeat_s=0.1)
    launch = runner.launch(pipeline.component.jobs["download_wider"])
    launch.folder.mkdir()
    process = subprocess.Popen(["bash", "-c", f"echo 'fetched 3 of 5 files' > {launch.log}; sleep 0.5"])
    assert runner.wait(process, launch, "[1/17] download_wider", time.monotonic()) == 0
    beat = re.compile(r"\[1/17\] download_wider: running for \ds \| fetched 3 of 5 files")
    assert any(beat.fullmatch(line) for line in lines), lines


def readme_run_commands() -> list[list[str]]:
    text = (REPO / "docs" / "workstation.md").read_text(encoding="utf-8")
    section = text.split("## Running on a TAO workstation", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            tokens = shlex.split(line.split("#")[0])
            if tokens[:2] == ["tao-aml", "run"]:
                commands.append(tokens[1:])
    return commands


def test_the_readme_run_commands_are_valid_settings() -> None:
    """Each `tao-aml run` line of the README parses, and its pipeline, profile and settings pass the checks
    a run makes before it starts (running them would download WIDER FACE)."""
    commands = readme_run_commands()
    assert {"--no-docker", "--from", "--profile", "--input"} <= {token for args in commands for token in args}
    for args in commands:
        parsed = build_parser().parse_args(args)
        pipeline = Pipeline.load(parsed.pipeline)
        first = profile_assignments(pipeline, parsed.profile) if parsed.profile else []
        settings = resolve_settings(pipeline, first + parsed.set)
        check_local(settings, {})
        if parsed.from_step:
            assert parsed.from_step in pipeline.component.jobs, args
        assert all(pair.partition("=")[0] in pipeline.component.inputs for pair in parsed.input), args
