"""The book (docs/, mkdocs.yml) is built like code and read in a real browser.

The build runs every executed block of every chapter with warnings as errors; the browser test
serves the built site on 127.0.0.1 and opens each page in headless Chromium, offline.
Screenshots go to $MINIRES_ARTIFACTS/book (default: artifacts/book in the repository).
"""
import functools
import http.server
import os
import pathlib
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest

from tests.support.scripts import ENV, REPO

pytestmark = pytest.mark.slow

RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\\frac|\\partial|\$\$")
REMOTE = re.compile(r"""<(?:script|img|iframe|source)[^>]+src=["']?(?:https?:)?//"""
                    r"""|<link[^>]+href=["']?(?:https?:)?//""")          # a resource from another host
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The built book: (folder, seconds the build took)."""
    pytest.importorskip("mkdocs", reason="the book needs the docs extra: pip install -e \".[docs]\"")
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz): the book draws graphs")
    folder = tmp_path_factory.mktemp("book") / "site"
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(folder)],
                            cwd=REPO, env={**ENV, "NO_MKDOCS_2_WARNING": "1"},
                            capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr[-4000:]
    return folder, seconds


def pages(folder):
    """The chapter pages of the built site (404.html left out)."""
    return sorted(path for path in folder.rglob("index.html") if "assets" not in path.parts)


def test_the_book_builds_strict_and_every_formula_is_mathml(site):
    folder, seconds = site
    print(f"the book built in {seconds:.1f} s")
    built = pages(folder)
    nav = re.findall(r"^\s+- .*: (\S+\.md)$", (REPO / "mkdocs.yml").read_text(), re.MULTILINE)
    assert len(built) == len(nav) >= 14
    for page in built:
        text = page.read_text()
        body = re.sub(r"<(script|style|svg|pre|code)\b.*?</\1>", "", text, flags=re.DOTALL)
        assert not RAW_TEX.search(re.sub(r"<[^>]+>", "", body)), f"{page}: TeX left unconverted"
        assert not REMOTE.search(text), f"{page}: a script, style or image from another host"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served(site):
    folder, _ = site
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("no Chromium to open the book in (apt-get install chromium)")
    return path


def test_every_page_opens_in_chromium_offline_with_formulas_images_and_links(served):
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="the browser check needs the docs extra (playwright)")
    folder, origin = served
    artifacts = pathlib.Path(os.environ.get("MINIRES_ARTIFACTS", REPO / "artifacts")) / "book"
    artifacts.mkdir(parents=True, exist_ok=True)
    urls = [origin + "/" + str(page.parent.relative_to(folder)).replace(".", "") + "/"
            for page in pages(folder)]
    urls = [url.replace("//", "/").replace("http:/", "http://") for url in urls]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        problems, elsewhere = [], []
        page.on("console", lambda message: message.type == "error" and problems.append(message.text))
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.route(re.compile(r"^(?!http://127\.0\.0\.1:).*"),
                   lambda route: (elsewhere.append(route.request.url), route.abort()))
        links = set()
        for url in urls:
            response = page.goto(url, wait_until="load")
            assert response.status == 200, url
            state = page.evaluate("""() => ({
                text: document.querySelector("article").innerText,
                math: [...document.querySelectorAll("article math")]
                      .map(m => m.getBoundingClientRect().width),
                images: [...document.images].map(i => [i.src, i.complete && i.naturalWidth > 0]),
                links: [...document.querySelectorAll("a[href]")].map(a => a.href),
            })""")
            assert not RAW_TEX.search(state["text"]), f"{url}: raw TeX on the page"
            assert all(width > 0 for width in state["math"]), f"{url}: a formula was not drawn"
            assert all(loaded for _, loaded in state["images"]), f"{url}: {state['images']}"
            links.update(link for link in state["links"] if link.startswith(origin))
            name = url[len(origin):].strip("/").replace("/", "_") or "index"
            page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
        for link in sorted(links):
            target, _, fragment = link.partition("#")
            path = urllib.parse.urlsplit(target).path
            file = folder / path.lstrip("/")
            file = file / "index.html" if path.endswith("/") else file
            assert file.is_file(), f"a link to {link} leads nowhere"
            if fragment and file.suffix == ".html":
                assert f'id="{fragment}"' in file.read_text(), f"{link}: no such anchor"
        browser.close()
    assert not problems, problems
    assert not elsewhere, f"the book asked for other hosts: {elsewhere}"
