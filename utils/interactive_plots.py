"""Interactive figures (plotly) that work in JupyterLab and, offline, on the book's website.

Kept apart from `utils.plots` (matplotlib) because importing plotly costs seconds: only notebooks that draw an
interactive map pay for it.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.io.base_renderers import MimetypeRenderer
from plotly.io.json import to_json_plotly

_figure_numbers = itertools.count(1)  # element ids that are unique within a notebook and the same on every build

# Where the website serves plotly.js (copied there by scripts/vendor_assets.py), relative to the site's root.
PLOTLY_JS_PATH = "_static/vendor/plotly/plotly.min.js"

_BOOK_FIGURE_HTML = """<div id="{id}" class="plotly-graph-div" style="height:{height}px; width:100%;"></div>
<script>
(function () {{
  var draw = function () {{ Plotly.newPlot("{id}", {data}, {layout}, {config}); }};
  if (window.Plotly) {{ draw(); return; }}
  var src = (document.documentElement.dataset.content_root || "") + "{path}";
  var script = document.querySelector('script[src="' + src + '"]');
  if (!script) {{
    script = document.createElement("script");
    script.src = src;
    document.head.appendChild(script);
  }}
  script.addEventListener("load", draw);
}})();
</script>"""


class BookRenderer(MimetypeRenderer):
    """Plotly figures as HTML that loads plotly.js from the website itself, so the book's figures work offline."""

    def to_mimebundle(self, fig_dict: dict) -> dict:
        """The `text/html` output the book shows: a div and a script that draws into it once plotly.js is there."""
        layout = fig_dict.get("layout", {})
        data = to_json_plotly(fig_dict.get("data", []))
        html = _BOOK_FIGURE_HTML.format(
            id=f"plotly-{next(_figure_numbers)}-{hashlib.sha1(data.encode()).hexdigest()[:8]}",
            height=int(layout.get("height") or 500),
            data=data,
            layout=to_json_plotly(layout),
            config=to_json_plotly({"responsive": True, "displaylogo": False, **fig_dict.get("config", {})}),
            path=PLOTLY_JS_PATH,
        )
        return {"text/html": html}


# JupyterLab and VS Code draw the plotly mime type themselves; the book (myst-nb) uses the HTML.
pio.renderers["book"] = BookRenderer()
pio.renderers.default = "plotly_mimetype+book"


def embedding_map(
    words: Sequence[str],
    coords: np.ndarray,
    colors: Sequence | None = None,
    title: str = "",
    show_text: bool | None = None,
    height: int = 500,
) -> go.Figure:
    """An interactive 2-d map of word vectors (e.g. after PCA): hover over a point to read its word.

    `colors` may hold one category per word (one legend entry per category) or one number per word (a colour
    scale); words are written next to their points when there are at most 60 of them, unless `show_text` says.
    """
    coords = np.asarray(coords, dtype=float)
    if coords.ndim != 2 or coords.shape[1] != 2 or len(coords) != len(words):
        raise ValueError(f"coords must have shape ({len(words)}, 2), got {coords.shape}")
    words = [str(word) for word in words]
    mode = "markers+text" if (len(words) <= 60 if show_text is None else show_text) else "markers"
    style = dict(mode=mode, textposition="top center", hovertemplate="<b>%{text}</b><br>(%{x:.2f}, %{y:.2f})")
    figure = go.Figure()
    if colors is None:
        figure.add_trace(go.Scatter(x=coords[:, 0], y=coords[:, 1], text=words, name="", **style))
    elif all(isinstance(c, (int, float, np.number)) and not isinstance(c, bool) for c in colors):
        marker = dict(color=np.asarray(colors, dtype=float), colorscale="RdBu", showscale=True)
        figure.add_trace(go.Scatter(x=coords[:, 0], y=coords[:, 1], text=words, marker=marker, name="", **style))
    else:
        groups = pd.Series([str(c) for c in colors])
        for group in dict.fromkeys(groups):  # first-seen order
            mask = (groups == group).to_numpy()
            text = [w for w, m in zip(words, mask) if m]
            figure.add_trace(go.Scatter(x=coords[mask, 0], y=coords[mask, 1], text=text, name=group, **style))
    figure.update_layout(title=title, height=height, xaxis_title="component 1", yaxis_title="component 2",
                         template="plotly_white", margin=dict(l=40, r=20, t=60 if title else 20, b=40))
    return figure
