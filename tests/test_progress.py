"""Progress bars: on a terminal or in a notebook at most a few redraws a second; in a log, nothing
for short work and a plain line now and then for long work (no carriage-return frames)."""
import os
import pty
import subprocess
import sys
import time

LOOP = ("import time; from mstdeploy.progress import bar\n"
        "for _ in bar(range(400), desc='work'):\n"
        "    time.sleep(0.005)\n")


def test_no_progress_output_for_short_work_in_a_log():
    r = subprocess.run([sys.executable, "-c", LOOP], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_long_work_in_a_log_gets_a_plain_line_now_and_then():
    code = "import mstdeploy.progress as p; p.LOG_SECONDS = 0.5\n" + LOOP      # 400 x 5 ms: 2 s
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)    # bytes: \r kept
    assert r.returncode == 0 and b"\r" not in r.stderr, r.stderr
    lines = r.stderr.decode().splitlines()
    assert 2 <= len(lines) <= 8 and all(line.startswith("work:") for line in lines), lines
    assert "400/400" in lines[-1]                                   # and the last says it ended


def test_a_notebook_gets_the_bar():
    code = "import sys, types; sys.modules['ipykernel'] = types.ModuleType('ipykernel')\n" + LOOP
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)    # bytes: \r kept
    assert r.returncode == 0 and b"\r" in r.stderr and b"400/400" in r.stderr, r.stderr


def test_at_most_a_few_redraws_a_second_on_a_terminal():
    pid, fd = pty.fork()
    if pid == 0:                                    # child: stderr is the pty
        os.execv(sys.executable, [sys.executable, "-c", LOOP])
    out, t0 = b"", time.time()
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    seconds = time.time() - t0
    frames = out.count(b"\r")
    assert b"work" in out and b"400/400" in out             # shown, and it finished
    assert frames <= 3 * seconds + 3, (frames, seconds)     # 400 updates, a handful of frames
