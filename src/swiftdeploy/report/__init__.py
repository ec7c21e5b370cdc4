"""The audit report (Markdown, self-contained HTML with SVG charts) folded from the history's records. Uses
present/'s figures formatting; may import every package."""
