"""Markdown outputs render as HTML that cannot run anything."""

from html.parser import HTMLParser

from pipelines.visualizations.markdown import to_html


def test_it_renders_markdown():
    html = to_html("# Eval\nacc **0.85**\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert "<h1>Eval</h1>" in html and "<strong>0.85</strong>" in html
    assert "<td>1</td>" in html


def test_raw_html_is_shown_as_text():
    html = to_html("<script>alert(1)</script>\n\nhi <b onclick='x()'>there</b>")
    assert "<script" not in html and "&lt;script&gt;" in html
    assert "<b" not in html and "onclick" not in html.replace("&lt;b onclick", "")


def test_links_keep_to_safe_schemes():
    html = to_html("[a](javascript:alert(1)) [b](https://example.com) "
                   "![c](javascript:alert(2)) [d](data:text/html,<script>x</script>)")
    assert "javascript:" not in html and "data:" not in html
    assert '<a href="https://example.com" rel="noopener noreferrer nofollow">b</a>' in html


def test_event_handlers_never_become_attributes():
    html = to_html('![x](https://example.com/x.png "t" onerror=alert(1))\n\n'
                   '<img src=x onerror=alert(1)>')
    assert not [(tag, name) for tag, attrs in elements(html) for name, _ in attrs
                if name.startswith("on")]


def test_what_the_renderer_might_let_through_is_cleaned_again(monkeypatch):
    from pipelines.visualizations import markdown

    monkeypatch.setattr(markdown, "_render", lambda text: text)  # a renderer gone wrong
    html = to_html('<p onclick="x()">a</p><script>alert(1)</script>'
                   '<a href="javascript:alert(1)">b</a><iframe src="/"></iframe>')
    assert [tag for tag, _ in elements(html)] == ["p", "a"]
    assert dict(elements(html)[1][1]).get("href") is None
    assert elements(html)[0][1] == []


def elements(html: str) -> list[tuple[str, list]]:
    found = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, attrs))

    Parser().feed(html)
    return found
