"""`make demo`: the iris example through the moma CLI, from training to a scoring service.

    python examples/iris/demo.py          # serve, train, register, build, deploy, score two rows, console URL
    python examples/iris/demo.py --stop   # delete the demo service, then stop the server the demo started

Every step runs the real `moma` command, printed before it runs. The server is
`moma serve` on embedded defaults, started in the background unless one already
answers (its log: $MOMA_HOME/serve.log, its pid: $MOMA_HOME/serve.pid).

Rerunning is quick and safe: a model or manifest with the same content is reused, the
image request is served by the builder's content hash (an identical image exists, so
nothing is built), and the existing `iris-demo` service is updated in place (same URL,
same keys) rather than deleted and created again.

Environment: MOMA_HOME (default ~/.moma), MOMA_DEMO_PORT (default 8081) or MOMA_URL.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MOMA = Path(sys.executable).parent / "moma"
# How commands are printed: `moma` when that is the one on PATH, else the path to it.
SHOWN = "moma" if shutil.which("moma") == str(MOMA) else os.path.relpath(MOMA)
DEFAULT_URL = "http://127.0.0.1:8081"
NAME = "iris-demo"
ROWS = {"data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}
SERVER_START_SECONDS = 90
SERVER_STOP_SECONDS = 60


class DemoFailed(Exception):
    pass


class Demo:
    def __init__(self) -> None:
        self.home = Path(os.environ.get("MOMA_HOME") or Path.home() / ".moma").expanduser()
        port = os.environ.get("MOMA_DEMO_PORT")
        self.url = (f"http://127.0.0.1:{port}" if port else os.environ.get("MOMA_URL") or DEFAULT_URL).rstrip("/")
        self.env = {**os.environ, "MOMA_HOME": str(self.home)}
        self.env.pop("MOMA_URL", None)  # the commands name the server themselves, as printed
        self.pid_file = self.home / "serve.pid"
        self.log_file = self.home / "serve.log"

    # -- the demo ---------------------------------------------------------------------------

    def run(self) -> None:
        self.ensure_server()
        project = self.train(self.home / "demo" / "iris")
        model = self.model(project / "model.pkl")
        manifest = self.manifest(project, model)
        step("build the image (the worker's build log streams here; identical content is not built twice)")
        image = self.moma("image", "create", "-n", NAME, "--manifest-id", manifest["id"], "-o", "json")
        say(f"image {image['imageLocation']} (id {image['id']})")
        service = self.service(image)
        rows = json.dumps(ROWS)
        step("score two rows with the service's key; the answers:")
        self.moma("service", "run", "realtime", "-i", service["id"], "-d", rows, capture=False)
        step("how to call it by hand (the curl line carries the key):")
        self.moma("service", "usage", "realtime", "-i", service["id"], "-d", json.dumps({"data": ROWS["data"][:1]}),
                  capture=False)
        step(f"the service {NAME} keeps running at {service['scoringUri']}")
        say("`make demo-stop` stops everything (the service, then the server).")
        self.console(service)

    def ensure_server(self) -> None:
        if answers(self.url):
            step(f"a moma server answers at {self.url}: using it")
            return
        port = self.url.rsplit(":", 1)[-1].split("/", 1)[0]
        if not port.isdigit() or not self.url.startswith(("http://127.0.0.1:", "http://localhost:")):
            raise DemoFailed(f"no moma server answers at {self.url}, and the demo only starts one on 127.0.0.1")
        self.home.mkdir(parents=True, exist_ok=True)
        step(f"start the server in the background (log: {self.log_file})")
        show([SHOWN, "serve", "--port", port], suffix=f" >> {self.log_file} 2>&1 &")
        with self.log_file.open("ab") as log:
            server = subprocess.Popen([str(MOMA), "serve", "--port", port], env=self.env, stdin=subprocess.DEVNULL,
                                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.pid_file.write_text(f"{server.pid}\n")
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not answers(self.url):
            if server.poll() is not None or time.monotonic() > deadline:
                self.pid_file.unlink(missing_ok=True)
                raise DemoFailed(f"moma serve did not start; the end of {self.log_file}:\n{tail(self.log_file)}")
            time.sleep(0.3)
        say(f"moma serve (pid {server.pid}) answers at {self.url}")

    def train(self, project: Path) -> Path:
        """A copy of the example with a freshly trained model (the same bytes every time)."""
        project.mkdir(parents=True, exist_ok=True)
        for name in ("score.py", "requirements.txt"):
            shutil.copy(HERE / name, project / name)
        step("train the iris classifier")
        command = [sys.executable, str(HERE / "train.py"), str(project)]
        show([os.path.relpath(sys.executable), os.path.relpath(HERE / "train.py"), str(project)])
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        return project

    def model(self, path: Path) -> dict[str, Any]:
        step(f"register the model (unless {NAME} already holds these bytes)")
        digest = sha256(path)
        same = [m for m in self.moma("model", "list", "-n", NAME, "-o", "json") if holds(m["url"], digest)]
        if same:
            say(f"model {NAME} version {same[-1]['version']} has this content: reusing it")
            return same[-1]
        model = self.moma("model", "register", "-m", str(path), "-n", NAME, "-t", "demo",
                          "-d", "iris species from sepal and petal sizes", "-o", "json")
        say(f"model {NAME} version {model['version']} (id {model['id']})")
        return model

    def manifest(self, project: Path, model: dict[str, Any]) -> dict[str, Any]:
        step("create the manifest: driver, requirements, model (unless one with this content exists)")
        driver, requirements = sha256(project / "score.py"), sha256(project / "requirements.txt")
        candidates = self.moma("manifest", "list", "-n", NAME, "--model-id", model["id"], "-o", "json")
        same = [m for m in candidates if m["modelIds"] == [model["id"]]
                and [holds(a["url"], driver) for a in m["assets"]] == [True]
                and holds(m["targetRuntime"]["properties"].get("pipRequirements", ""), requirements)]
        if same:
            say(f"manifest {NAME} version {same[-1]['version']} has this content: reusing it")
            return same[-1]
        manifest = self.moma("manifest", "create", "-n", NAME, "-f", str(project / "score.py"), "-r", "python",
                             "-p", str(project / "requirements.txt"), "-i", model["id"], "-o", "json")
        say(f"manifest {NAME} version {manifest['version']} (id {manifest['id']})")
        return manifest

    def service(self, image: dict[str, Any]) -> dict[str, Any]:
        existing = self.moma("service", "list", "-n", NAME, "-o", "json")
        if existing:
            step(f"the service {NAME} exists: update it to the new image (same URL, same keys)")
            service = self.moma("service", "update", "realtime", "-i", existing[0]["id"], "--image-id", image["id"],
                                "-o", "json")
        else:
            step(f"create the service {NAME}")
            service = self.moma("service", "create", "realtime", "-n", NAME, "--image-id", image["id"],
                                "-o", "json")
        say(f"service {NAME} {service['state']} at {service['scoringUri']} (id {service['id']})")
        return service

    def console(self, service: dict[str, Any]) -> None:
        """Where to see it all in a browser, and which token signs in (the token itself is
        not printed: it stays in its 0600 file)."""
        step("see it in the console (models, the build log, the service: try it, its keys, live metrics):")
        say(f"{self.url}/ui/accounts/default/default/default/services/{service['id']}")
        say(f"sign in with the admin token: paste the output of `cat {self.home / 'admin-token'}`")

    # -- make demo-stop ---------------------------------------------------------------------

    def stop(self) -> None:
        if answers(self.url):
            step(f"delete the service {NAME}")
            services = self.moma("service", "list", "-n", NAME, "-o", "json")
            for service in services:
                self.moma("service", "delete", "realtime", "-i", service["id"], capture=False)
            if not services:
                say(f"no service named {NAME}")
        else:
            step(f"no moma server answers at {self.url}: no service to delete")
        self.stop_server()

    def stop_server(self) -> None:
        pid = self.server_pid()
        if pid is None:
            if answers(self.url):
                say(f"the server at {self.url} was not started by `make demo` (no {self.pid_file}): left running")
            return
        step(f"stop the server the demo started (pid {pid})")
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + SERVER_STOP_SECONDS
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.3)
        if alive(pid):
            os.killpg(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        say("stopped")

    def server_pid(self) -> int | None:
        """The pid in the pid file, if that process is still our `moma serve` (and leads its group)."""
        try:
            pid = int(self.pid_file.read_text().strip())
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            self.pid_file.unlink(missing_ok=True)
            return None
        if b"serve" not in command or not any(part.endswith(b"moma") for part in command) or os.getpgid(pid) != pid:
            self.pid_file.unlink(missing_ok=True)
            return None
        return pid

    # -- running the CLI --------------------------------------------------------------------

    def moma(self, *args: str, capture: bool = True) -> Any:
        """Run one CLI command as printed. ``capture``: its stdout is JSON (-o json) to read;
        progress and errors (stderr) always go straight to the terminal."""
        server = ["--url", self.url] if self.url != DEFAULT_URL else []
        show([SHOWN, *server, *args])
        result = subprocess.run([str(MOMA), *server, *args], env=self.env, text=True,
                                stdout=subprocess.PIPE if capture else None)
        if result.returncode != 0:
            hint = ""
            if result.returncode == 1 and not self.pid_file.exists():
                hint = (f"\n(the server at {self.url} was not started by the demo: if it belongs to another "
                        "MOMA_HOME, stop it or choose another port with MOMA_DEMO_PORT)")
            raise DemoFailed(f"`moma {' '.join(args[:2])}` failed (exit {result.returncode}){hint}\n"
                             f"server log: {self.log_file}")
        return json.loads(result.stdout) if capture else None


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def say(text: str) -> None:
    print(f"   {text}", flush=True)


def show(command: list[str], suffix: str = "") -> None:
    print(f"$ {shlex.join(command)}{suffix}", flush=True)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/swagger.json", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # something answers HTTP there
    except (OSError, ValueError):
        return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie has exited
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def holds(url: str, digest: str) -> bool:
    """Whether an ``artifact://sha256/<hex>/<name>`` URL holds these bytes."""
    return f"sha256/{digest}/" in url


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stop", action="store_true", help="delete the demo service and stop the demo's server")
    arguments = parser.parse_args()
    demo = Demo()
    try:
        demo.stop() if arguments.stop else demo.run()
    except DemoFailed as exc:
        print(f"\ndemo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndemo: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
