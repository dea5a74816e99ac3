"""pytest fixtures for Petrel; the helpers themselves are in petrel_helpers.py."""

import pytest

from petrel_helpers import (ASAN_BUILD_DIR, BUILD_DIR, GUEST_DIR,
                            GUEST_TESTS_DIR, REPO_ROOT, run_petrel)


# --- fixtures ----------------------------------------------------------------

@pytest.fixture(scope="session")
def repo_root():
    return REPO_ROOT


@pytest.fixture(scope="session")
def build_dir():
    return BUILD_DIR


@pytest.fixture(scope="session")
def asan_build_dir():
    return ASAN_BUILD_DIR


@pytest.fixture(scope="session")
def guest_dir():
    return GUEST_DIR


@pytest.fixture(scope="session")
def guest_tests_dir():
    return GUEST_TESTS_DIR


@pytest.fixture
def petrel():
    """The helper: petrel(flavor, args, input=..., timeout=...) -> Result."""
    return run_petrel
