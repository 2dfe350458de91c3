"""`llmft report`: one self-contained HTML file (inline SVG charts, no scripts, no network at view time)
for one or more runs or a search folder, with the same figures as PNG files beside it."""
