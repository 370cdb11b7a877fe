"""Interview problems: a small built-in bank, or a Markdown file with public and hidden tests.

File format (everything before the first recognised `##` heading is the statement)::

    # Sum of numbers
    Read whitespace-separated integers from stdin and print their sum.

    ## Starter code
    ```python
    import sys
    print(...)
    ```

    ## Public tests
    ### two numbers
    ```input
    1 2
    ```
    ```output
    3
    ```

    ## Hidden tests
    ### many numbers
    ...

Public tests are shared with the candidate; hidden tests never leave the host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import AssessIQError

__all__ = ["BANK", "LANGUAGES", "Problem", "ProblemError", "TestCase", "canonical_language",
           "load_problem", "parse_problem", "starter_for"]

MAX_PROBLEM_BYTES = 256 * 1024

# The sandbox's languages (`sandbox.languages`), by the names the setup screen offers.
LANGUAGES = ["python", "javascript", "c", "c++", "java"]
_COMMENT = {"python": "#", "javascript": "//", "c": "//", "c++": "//", "java": "//"}
_SHOWN = {"python": "Python", "javascript": "JavaScript", "c": "C", "c++": "C++", "java": "Java"}


class ProblemError(AssessIQError):
    """A problem file that cannot be used; the message says why."""


@dataclass(frozen=True)
class TestCase:
    __test__ = False  # not a pytest test class

    name: str
    stdin: str
    expected: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "stdin": self.stdin, "expected": self.expected}


@dataclass(frozen=True)
class Problem:
    title: str
    statement: str  # Markdown, including the title heading
    language: str = "python"
    starter: str = ""
    public: tuple[TestCase, ...] = field(default_factory=tuple)
    hidden: tuple[TestCase, ...] = field(default_factory=tuple)


_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)
_SECTIONS = {"starter code": "starter", "public tests": "public", "hidden tests": "hidden"}


def _tests(text: str, where: str) -> tuple[TestCase, ...]:
    cases: list[TestCase] = []
    for chunk in re.split(r"^###[ \t]+", text, flags=re.M)[1:]:
        name, _, body = chunk.partition("\n")
        blocks = {m.group(1).strip().lower(): m.group(2) for m in _FENCE.finditer(body)}
        if "input" not in blocks or "output" not in blocks:
            raise ProblemError(f"{where} test {name.strip()!r} needs an ```input and an "
                               "```output block")
        cases.append(TestCase(name.strip() or f"test {len(cases) + 1}", blocks["input"],
                              blocks["output"]))
    return tuple(cases)


def parse_problem(text: str, *, default_language: str = "python") -> Problem:
    """Parse the Markdown format above; `ProblemError` with a one-line reason."""
    parts = re.split(r"^##[ \t]+(.+?)[ \t]*$", text, flags=re.M)
    statement, sections = parts[0].strip(), parts[1:]
    title_match = re.search(r"^#[ \t]+(.+)$", statement, flags=re.M)
    if not title_match:
        raise ProblemError("a problem file must start with a '# Title' line")
    starter, language = "", default_language
    public: tuple[TestCase, ...] = ()
    hidden: tuple[TestCase, ...] = ()
    extra: list[str] = []
    for heading, body in zip(sections[0::2], sections[1::2], strict=True):
        kind = _SECTIONS.get(heading.strip().lower())
        if kind == "starter":
            m = _FENCE.search(body)
            if m is None:
                raise ProblemError("'## Starter code' needs a fenced code block")
            language = m.group(1).strip() or default_language
            starter = m.group(2)
        elif kind == "public":
            public = _tests(body, "public")
        elif kind == "hidden":
            hidden = _tests(body, "hidden")
        else:
            extra.append(f"## {heading}\n{body}")
    if extra:
        statement = statement + "\n\n" + "\n".join(extra).strip()
    return Problem(title_match.group(1).strip(), statement, language, starter, public, hidden)


def canonical_language(name: str) -> str:
    """The sandbox's name for a language a problem file's starter fence gives ("js" →
    "javascript", "cpp" → "c++", "py" → "python"); an unknown name is kept as it is
    (lower-cased), so the setup shows it rather than silently choosing another."""
    from sandbox.languages import LANGUAGES as SANDBOX_LANGUAGES

    low = name.strip().lower()
    for lang in SANDBOX_LANGUAGES:
        if low == lang.name or low in lang.aliases:
            return lang.name
    return low


def starter_for(problem: Problem, language: str) -> str:
    """The code the editor starts with when the session is in `language`: the problem's
    starter in its own language; in another language a one-line comment in that language's
    syntax saying what to write (never another language's code: a Python starter in a Java
    session would be a syntax error the candidate did not write). A comment rather than an
    empty editor, so the candidate sees which language the session expects."""
    language = canonical_language(language)
    if language == canonical_language(problem.language):
        return problem.starter
    mark = _COMMENT.get(language, "#")
    shown = _SHOWN.get(language, language)
    return f"{mark} Your {shown} solution: read standard input, print to standard output.\n"


def switch_note(old: str, new: str) -> str:
    """The line the editor puts above code kept through a language switch, in the new
    language's comment syntax (so the file still says what it is)."""
    new = canonical_language(new)
    mark = _COMMENT.get(new, "#")
    shown_old = _SHOWN.get(canonical_language(old), old)
    shown_new = _SHOWN.get(new, new)
    return (f"{mark} The interviewer switched the language from {shown_old} to {shown_new}; "
            f"the code below was written in {shown_old}.\n")


def load_problem(path: Path | str) -> Problem:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ProblemError(f"cannot read problem file {path}: {exc.strerror}") from exc
    if len(data) > MAX_PROBLEM_BYTES:
        raise ProblemError(f"problem file {path} is larger than {MAX_PROBLEM_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProblemError(f"problem file {path} is not UTF-8") from exc
    return parse_problem(text)


def _t(name: str, stdin: str, expected: str) -> TestCase:
    return TestCase(name, stdin, expected)


BANK: dict[str, Problem] = {
    p.title: p
    for p in [
        Problem(
            "Sum of numbers",
            "# Sum of numbers\n\nRead whitespace-separated integers from standard input and "
            "print their sum.\n\nExample: `1 2 3` → `6`.",
            starter="import sys\n\n\ndef main() -> None:\n    numbers = sys.stdin.read().split()\n"
                    "    print(numbers)\n\n\nmain()\n",
            public=(_t("three numbers", "1 2 3\n", "6\n"), _t("negative", "-5 5 10\n", "10\n")),
            hidden=(_t("empty input", "", "0\n"), _t("large", "1000000000 1000000000\n",
                                                      "2000000000\n")),
        ),
        Problem(
            "Reverse words",
            "# Reverse words\n\nRead one line and print its words in reverse order, separated "
            "by single spaces. Words may contain any Unicode letters (even emoji).\n\n"
            "Example: `hello big world` → `world big hello`.",
            starter="line = input()\nprint(line)\n",
            public=(_t("three words", "hello big world\n", "world big hello\n"),
                    _t("unicode", "你好 世界 😀\n", "😀 世界 你好\n")),
            hidden=(_t("one word", "solo\n", "solo\n"), _t("extra spaces", "  a   b  \n",
                                                            "b a\n")),
        ),
        Problem(
            "FizzBuzz",
            "# FizzBuzz\n\nRead `n` and print the numbers 1..n, one per line, but `Fizz` for "
            "multiples of 3, `Buzz` for multiples of 5 and `FizzBuzz` for multiples of both.",
            starter="n = int(input())\nfor i in range(1, n + 1):\n    print(i)\n",
            public=(_t("n = 5", "5\n", "1\n2\nFizz\n4\nBuzz\n"),),
            hidden=(_t("n = 15", "15\n", "1\n2\nFizz\n4\nBuzz\nFizz\n7\n8\nFizz\nBuzz\n11\n"
                                         "Fizz\n13\n14\nFizzBuzz\n"),),
        ),
    ]
}
