"""``scripts/install-system-deps.sh`` (the README's first step after pip) on the machines it
meets: Debian with or without its Chromium, Ubuntu (no Chromium deb, or a transitional one that
installs a snap), a distribution without apt; and the launcher's rule that passes over a snap's
Chromium. The script runs for real, under ``bash``, with the system tools it calls (apt-get,
apt-cache, dpkg-query, ldconfig, the Python with envgym) replaced by stubs that log their calls."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from envgym.browser import launch

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "install-system-deps.sh"
EGL = ("libegl1", "libegl-mesa0", "libgl1-mesa-dri")

STUBS = {
    # The Python envgym was installed into: FOUND says whether it finds a Chromium.
    "python": """
case "$*" in
  *chromium_executable*) [ "$FOUND" = 1 ] && exit 0 || exit 1 ;;
  *"import envgym.browser.launch, playwright"*) [ "$ENVGYM" = 1 ] && exit 0 || exit 1 ;;
  "-m playwright install"*) echo "python $*" >> "$LOG" ;;
  *) exit 2 ;;
esac
""",
    "apt-get": 'echo "apt-get $*" >> "$LOG"',
    "apt-cache": """
case "$1" in
  policy) printf 'chromium:\\n  Installed: (none)\\n  Candidate: %s\\n' "$CANDIDATE" ;;
  show) printf 'Package: chromium\\n%s\\n' "$ABOUT" ;;
esac
""",
    "dpkg-query": """
for pkg in "$@"; do :; done  # the last argument is the package
case " $MISSING " in *" $pkg "*) exit 1 ;; esac
printf 'install ok installed'
""",
    "ldconfig": 'printf "%s" "$LIBS"',
    "id": "echo 0",  # root: no sudo
}


def run_script(
    tmp_path: Path,
    *,
    apt: bool = True,
    found: bool = False,
    envgym: bool = True,
    candidate: str = "(none)",
    about: str = "",
    missing: tuple[str, ...] = (),
    libs: str = "",
) -> tuple[int, list[str], str]:
    """Run the script with stubbed tools: (exit status, the logged calls, stderr)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in STUBS.items():
        if not apt and name in ("apt-get", "apt-cache", "dpkg-query"):
            continue
        stub = bin_dir / name
        stub.write_text(f"#!{shutil.which('bash')}\n{body}")
        stub.chmod(0o755)
    for tool in ("grep",):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    log = tmp_path / "calls.log"
    log.touch()
    env = {
        "PATH": str(bin_dir),
        "LOG": str(log),
        "FOUND": str(int(found)),
        "ENVGYM": str(int(envgym)),
        "CANDIDATE": candidate,
        "ABOUT": about,
        "MISSING": " ".join(missing),
        "LIBS": libs,
    }
    res = subprocess.run(
        [shutil.which("bash"), str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60
    )
    return res.returncode, log.read_text().splitlines(), res.stderr


INSTALL = "apt-get install -y -qq --no-install-recommends"


def test_debian_with_everything_installed_does_nothing(tmp_path: Path) -> None:
    assert run_script(tmp_path, found=True) == (0, [], "")


def test_debian_without_chromium_installs_its_package(tmp_path: Path) -> None:
    about = "Depends: libc6 (>= 2.36), chromium-common (= 156.0)\nDescription: web browser"
    rc, calls, _ = run_script(tmp_path, candidate="156.0.8078.114-1~deb12u1", about=about)
    assert rc == 0 and calls == ["apt-get update -qq", f"{INSTALL} chromium"]


def test_missing_egl_packages_are_installed_alongside(tmp_path: Path) -> None:
    rc, calls, _ = run_script(tmp_path, found=True, missing=EGL[:2])
    assert rc == 0 and calls == ["apt-get update -qq", f"{INSTALL} libegl1 libegl-mesa0"]


@pytest.mark.parametrize(
    ("candidate", "about"),
    [
        ("(none)", ""),  # Ubuntu: no chromium deb at all
        (
            "1:85.0.4183.83-0ubuntu2",
            "Pre-Depends: debconf\nDepends: snapd\nDescription: Transitional package",
        ),
    ],
)
def test_ubuntu_gets_playwrights_chromium_with_its_libraries(
    tmp_path: Path, candidate: str, about: str
) -> None:
    rc, calls, _ = run_script(tmp_path, candidate=candidate, about=about, missing=EGL[2:])
    assert rc == 0
    assert calls == [
        "apt-get update -qq",
        f"{INSTALL} libgl1-mesa-dri",
        "python -m playwright install --with-deps chromium",
    ]


def test_without_apt_playwrights_chromium_and_a_warning_about_egl(tmp_path: Path) -> None:
    rc, calls, err = run_script(tmp_path, apt=False, libs="\tlibc.so.6 => /lib/libc.so.6\n")
    assert rc == 0 and calls == ["python -m playwright install chromium"]
    assert "libEGL" in err and "robot rendering" in err


def test_without_apt_and_with_egl_no_warning(tmp_path: Path) -> None:
    libs = "\tlibEGL.so.1 (libc6,x86-64) => /usr/lib64/libEGL.so.1\n"
    assert run_script(tmp_path, apt=False, found=True, libs=libs) == (0, [], "")


def test_before_pip_install_it_says_what_to_run_first(tmp_path: Path) -> None:
    rc, calls, err = run_script(tmp_path, envgym=False)
    assert rc == 1 and calls == [] and "pip install -e '.[all]'" in err


# ------------------------------------------------------------------ the launcher's rule


def test_a_snap_wrapper_is_a_snap_and_debians_wrapper_is_not(tmp_path: Path) -> None:
    ubuntu = tmp_path / "chromium-browser"
    ubuntu.write_text('#!/bin/sh\nexec /snap/bin/chromium "$@"\n')
    debian = tmp_path / "chromium"
    debian.write_text('#!/bin/sh\nexec /usr/lib/chromium/chromium "$@"\n')
    binary = tmp_path / "chrome"
    binary.write_bytes(b"\x7fELF" + b"/snap/" + bytes(1 << 17))  # big: a binary, not read
    assert launch.is_snap(str(ubuntu))
    assert not launch.is_snap(str(debian)) and not launch.is_snap(str(binary))
    assert not launch.is_snap(str(tmp_path / "absent"))


def test_default_executable_passes_over_a_snap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shim = tmp_path / "chromium-browser"
    shim.write_text('#!/bin/sh\nexec /snap/bin/chromium "$@"\n')
    monkeypatch.delenv("ENVGYM_CHROMIUM", raising=False)
    monkeypatch.setattr(launch.shutil, "which", {"chromium-browser": str(shim)}.get)
    assert launch.default_executable() is None
    monkeypatch.setenv("ENVGYM_CHROMIUM", str(shim))  # named on purpose: used as given
    assert launch.default_executable() == str(shim)


@pytest.mark.browser
def test_chromium_executable_finds_playwrights_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    monkeypatch.setattr(launch, "default_executable", lambda: None)
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path))  # the real driver asks here
    assert launch.chromium_executable() is None  # nothing downloaded there
    with sync_playwright() as p:
        path = Path(p.chromium.executable_path)
    assert path.is_relative_to(tmp_path)
    path.parent.mkdir(parents=True)
    path.touch()  # where `playwright install chromium` puts it
    assert launch.chromium_executable() == str(path)
