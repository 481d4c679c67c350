"""Notebook 07's AU-control widget in a real browser: JupyterLab on 127.0.0.1, headless Chromium driven
by Selenium. Runs every cell of the notebook prepared for the smoke profile, moves the AU26 slider with
the keyboard as a user would, and checks that the preview image the kernel sends back changed.

Needs Debian's ``chromium`` and ``chromium-driver``, the ``selenium`` package, and a trained smoke run
(``runs/smoke/04_gan/checkpoint.pt``, written by nbval or ``make reproduce PROFILE=smoke``); skipped
with the reason otherwise. The screenshot goes to ``runs/smoke/browser/07_au_control.png``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "07_au_control_demo.ipynb"
SMOKE_CHECKPOINT = ROOT / "runs" / "smoke" / "04_gan" / "checkpoint.pt"
SCREENSHOT = ROOT / "runs" / "smoke" / "browser" / "07_au_control.png"
TOKEN = "autalk-browser-test"
PREVIEW = "img.autalk-preview"  # build_demo's CSS classes: autalk-preview, autalk-au10 ... autalk-au26

# The notebook's cells as JupyterLab's model sees them: (code cells not run yet, kernel status, errors).
CELL_STATE_JS = """
const panel = window.jupyterapp.shell.currentWidget;
const cells = panel.content.model.cells;
let pending = 0; const errors = [];
for (let i = 0; i < cells.length; i++) {
  const c = cells.get(i);
  if (c.type !== 'code') continue;
  if (c.executionCount === null) pending++;
  for (let j = 0; j < c.outputs.length; j++) {
    const o = c.outputs.get(j).toJSON();
    if (o.output_type === 'error') errors.push(o.ename + ': ' + o.evalue);
  }
}
return [pending, panel.sessionContext.session.kernel.status, errors];
"""
KERNEL_READY_JS = """
const p = window.jupyterapp && window.jupyterapp.shell.currentWidget;
const k = p && p.sessionContext && p.sessionContext.session && p.sessionContext.session.kernel;
return k ? k.status : null;
"""


def _missing() -> str | None:
    """Why this test cannot run here, or None."""
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        return "no Chromium: apt-get install -y chromium chromium-driver"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    if not SMOKE_CHECKPOINT.is_file():
        where = SMOKE_CHECKPOINT.relative_to(ROOT)
        return f"no {where}: run `make nbval` or `make reproduce PROFILE=smoke` first"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(what: str, check: Callable[[], Any], timeout: float, every: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status
    except OSError:
        return 0


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[str]:
    """JupyterLab serving the notebook prepared for the smoke profile; yields its base URL. The server
    and its kernels are shut down afterwards (API shutdown, then SIGTERM, then SIGKILL of its group)."""
    import papermill as pm

    from autalk.profiles import load_profile

    served = tmp_path / "served"
    served.mkdir()
    smoke = load_profile("smoke")  # as `papermill --prepare-only -f params/smoke.yaml`, declared keys only
    params = {k: smoke[k] for k in pm.inspect_notebook(str(NOTEBOOK))}
    pm.execute_notebook(str(NOTEBOOK), str(served / NOTEBOOK.name), parameters=params, prepare_only=True,
                        kernel_name="python3", progress_bar=False)
    # Render every cell (no windowing), so the widget's DOM exists wherever it is on the page; no news
    # or update checks (no network, no pop-up over the page).
    quiet = {"fetchNews": "false", "checkForUpdates": False}
    for plugin, values in (("notebook-extension/tracker", {"windowingMode": "none"}),
                           ("apputils-extension/notification", quiet)):
        f = tmp_path / "settings" / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(values))
    port = _free_port()
    env = {**os.environ, "AUTALK_ROOT": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces")}
    log = open(tmp_path / "lab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
         f"--ServerApp.root_dir={served}", "--LabApp.expose_app_in_browser=True", "--allow-root"],
        cwd=served, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        status = f"{base}/api/status?token={TOKEN}"
        _wait("JupyterLab to answer", lambda: server.poll() is not None or _get(status), 60)
        if server.poll() is not None:
            tail = (tmp_path / "lab.log").read_text()[-3000:]
            pytest.fail(f"JupyterLab exited with {server.returncode}:\n{tail}")
        yield base
    finally:
        try:  # shuts the kernels down too
            req = urllib.request.Request(f"{base}/api/shutdown?token={TOKEN}", method="POST")
            urllib.request.urlopen(req, timeout=5).close()
            server.wait(15)
        except (OSError, subprocess.TimeoutExpired):
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)  # the group this fixture started
                server.wait(5)
        log.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Debian Chromium through the system chromedriver (Selenium never downloads a driver)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager: no network
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1500,1800", f"--user-data-dir={tmp_path / 'chromium'}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=opts)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _png(data: bytes) -> np.ndarray:
    import cv2

    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).astype(np.int16)


def test_slider_in_the_browser_changes_the_preview(lab: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(f"{lab}/lab/tree/{NOTEBOOK.name}?token={TOKEN}")
    _wait("the notebook's kernel", lambda: browser.execute_script(KERNEL_READY_JS) == "idle", 60)
    browser.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")

    def finished() -> bool:
        pending, status, errors = browser.execute_script(CELL_STATE_JS)
        assert not errors, f"notebook 07 failed in JupyterLab: {errors}"
        return pending == 0 and status == "idle"

    _wait("every cell of notebook 07 to run", finished, 120, every=1.0)
    image = _wait("the preview image", lambda: browser.find_elements(By.CSS_SELECTOR, PREVIEW), 20)[0]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", image)
    src, before = image.get_attribute("src"), _png(image.screenshot_as_png)
    handle = browser.find_element(By.CSS_SELECTOR, ".autalk-au26 .noUi-handle")
    handle.click()
    handle.send_keys(*[Keys.ARROW_RIGHT] * 20)  # 20 steps of 0.1: AU26 to +2, one kernel message each
    readout = browser.find_element(By.CSS_SELECTOR, ".autalk-au26 .widget-readout")
    _wait("the AU26 slider to reach 2", lambda: readout.text.strip() in ("2.0", "2.00"), 20)
    _wait("a new preview from the kernel", lambda: image.get_attribute("src") != src, 30)
    _wait("the kernel to finish the moves", lambda: browser.execute_script(CELL_STATE_JS)[1] == "idle", 30)
    time.sleep(0.5)  # the last image message
    after = _png(image.screenshot_as_png)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT))
    assert before.shape == after.shape
    third = before.shape[1] // 3  # unsteered | steered | where it changed
    assert np.abs(after[:, :third] - before[:, :third]).max() <= 2, "the unsteered frame must not move"
    assert np.abs(after[:, 2 * third :] - before[:, 2 * third :]).mean() > 1, "the change map stayed empty"
