"""Run each libFuzzer target (tests/fuzz, built by `make fuzz` into
build-fuzz/ with ASan+UBSan) for a fixed, seeded number of inputs.  A crash,
sanitizer report or leak makes libFuzzer exit non-zero, and the test fails
with its report.  Longer campaigns: build-fuzz/fuzz_<name> -max_total_time=600.
"""

import shutil
import subprocess

import pytest

from petrel_helpers import GUEST_DIR, GUEST_TESTS_DIR, REPO_ROOT, fail

FUZZ_DIR = REPO_ROOT / "build-fuzz"
# (target, runs): sized for a few tens of seconds each in CI
TARGETS = [("fuzz_rv64_exec", 20000), ("fuzz_loader", 300000), ("fuzz_x86_boot", 300000)]


def _seed_corpus(name, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    if name == "fuzz_loader":
        # real images as seeds: the guest test ELFs and the kernel's header
        for elf in sorted(GUEST_TESTS_DIR.glob("*.elf")):
            shutil.copy(elf, corpus / elf.name)
        image = GUEST_DIR / "Image"
        if image.exists():
            (corpus / "image-head").write_bytes(image.read_bytes()[:65536])
    return corpus


@pytest.mark.parametrize("name,runs", TARGETS)
def test_fuzz_target(name, runs, tmp_path):
    binary = FUZZ_DIR / name
    if not binary.exists():
        fail(f"{binary} is missing; build it with `make fuzz`")
    corpus = _seed_corpus(name, tmp_path)
    proc = subprocess.run([str(binary), f"-runs={runs}", "-seed=1", "-timeout=10",
                           f"-artifact_prefix={tmp_path}/", str(corpus)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    out = proc.stdout.decode(errors="replace")
    if proc.returncode != 0:
        fail(f"{name}: libFuzzer exited {proc.returncode}", out[-6000:])
    if f"Done {runs} runs" not in out:
        fail(f"{name}: did not complete {runs} runs", out[-2000:])
