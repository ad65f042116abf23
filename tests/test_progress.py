"""Progress bars: silent when stderr is not a terminal (logs stay clean), at most a few redraws a
second on a terminal."""
import os
import pty
import subprocess
import sys
import time

LOOP = ("import time; from mstdeploy.progress import bar\n"
        "for _ in bar(range(400), desc='work'):\n"
        "    time.sleep(0.005)\n")


def test_no_progress_output_when_stderr_is_not_a_terminal():
    r = subprocess.run([sys.executable, "-c", LOOP], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr


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
