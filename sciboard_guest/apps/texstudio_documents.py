"""The LaTeX projects TeXstudio tasks start from, by name (our own texts).

Each project is a main ``.tex`` file plus optional side files (a ``.bib``
database, a small PNG plot). Task files only name a project; its text lives
here, so line numbers used by oracles are stable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Project:
    """A main document and the files that sit next to it."""

    main: str
    text: str
    side_files: dict[str, str] = field(default_factory=dict)
    side_binaries: dict[str, Callable[[], bytes]] = field(default_factory=dict)


def plot_png() -> bytes:
    """A small PNG (a rising curve on white) for \\includegraphics."""
    import numpy as np

    from sciboard_guest.server import png_bytes

    height, width = 120, 160
    image = np.full((height, width, 3), 255, np.uint8)
    xs = np.arange(width)
    ys = (height - 10 - (height - 20) * (1 - np.exp(-xs / 40.0))).astype(int)
    for dy in (-1, 0, 1):
        image[np.clip(ys + dy, 0, height - 1), xs] = (20, 60, 160)
    image[height - 10, :] = 0
    image[:, 10] = 0
    return png_bytes(image)


LAB_REPORT = r"""\documentclass[11pt]{article}
\usepackage{amsmath}
\title{Kinetics of Catalase in Potato Extract}
\author{Jordan Lee}
\date{}
\begin{document}
\maketitle
\section{Introduction}
Catalase breaks hydrogen peroxide down into water and oxygen.
We measured how fast potato extract releases oxygen.
\section{Methods}
Oxygen release was recorded at five substrate concentrations.
Each measurement was repeated three times at room temperature.
\section{Results}
The initial rate rose with substrate concentration and then levelled off.
\end{document}
"""

THESIS_CHAPTER = r"""\documentclass{article}
\begin{document}
\section{Background}
Small proteins fold into their native structure within milliseconds.
A random search over all conformations would take far longer.
\section{Related Work}
Simulations now reach the timescales on which folding happens.
\begin{thebibliography}{9}
\bibitem{levinthal1969} C.~Levinthal. How to fold graciously. 1969.
\bibitem{anfinsen1973} C.~B. Anfinsen. Principles that govern the folding of protein chains. Science, 1973.
\end{thebibliography}
\end{document}
"""

UNCLOSED_BRACE = r"""\documentclass{article}
\begin{document}
\section{Summary}
Sea surface temperatures rose in every basin we sampled.
The \textbf{largest change was seen in the North Atlantic.
\section{Outlook}
Next season we will add salinity profiles.
\end{document}
"""

MISMATCHED_LIST = r"""\documentclass{article}
\begin{document}
\section{Sample Preparation}
\begin{itemize}
\item Dissolve the buffer salts in water.
\item Adjust the pH to 7.4.
\item Filter the solution.
\end{enumerate}
\end{document}
"""

FIGURE_NO_PACKAGE = r"""\documentclass{article}
\begin{document}
\section{Calibration}
The calibration curve is shown below.
\begin{figure}[h]
\centering
\includegraphics[width=0.5\textwidth]{plot.png}
\caption{Calibration curve of the spectrometer.}
\label{fig:calibration}
\end{figure}
\end{document}
"""

FIGURE_READY = r"""\documentclass{article}
\usepackage{graphicx}
\begin{document}
\section{Absorbance}
Hydrogen peroxide absorbs ultraviolet light at 240 nm.
We followed its decay over ten minutes.
\end{document}
"""

BROKEN_REFERENCE = r"""\documentclass{article}
\begin{document}
\section{Data}
\begin{table}[h]
\centering
\begin{tabular}{lr}
\hline
Station & Depth (m) \\
\hline
North & 120 \\
South & 85 \\
\hline
\end{tabular}
\caption{Sampling stations.}
\label{tab:stations}
\end{table}
Table~\ref{tab:sites} lists the stations.
\end{document}
"""

BIBTEX_PAPER = r"""\documentclass{article}
\begin{document}
\section{Introduction}
Crystal structures of enzymes guide the design of inhibitors.
\section{Approach}
We dock candidate molecules into the active site.
\end{document}
"""

REFS_BIB = r"""@article{blake1965,
  author  = {Blake, C. C. F. and Koenig, D. F. and Mair, G. A.},
  title   = {Structure of Hen Egg-White Lysozyme},
  journal = {Nature},
  year    = {1965},
  volume  = {206},
  pages   = {757--761}
}
@book{branden1999,
  author    = {Branden, Carl and Tooze, John},
  title     = {Introduction to Protein Structure},
  publisher = {Garland},
  year      = {1999}
}
"""

FIELD_NOTES = r"""\documentclass{article}
\begin{document}
\section{Site Description}
The meadow lies at 1800 m on a south-facing slope.
\section{Scratch Notes}
Remember to recharge the GPS batteries.
\section{Observations}
We counted 42 flowering plants in the plot.
\end{document}
"""

PROJECTS: dict[str, Project] = {
    "lab_report": Project("catalase.tex", LAB_REPORT),
    "thesis_chapter": Project("folding.tex", THESIS_CHAPTER),
    "unclosed_brace": Project("ocean.tex", UNCLOSED_BRACE),
    "mismatched_list": Project("protocol.tex", MISMATCHED_LIST),
    "figure_no_package": Project("calibration.tex", FIGURE_NO_PACKAGE, side_binaries={"plot.png": plot_png}),
    "figure_ready": Project("absorbance.tex", FIGURE_READY, side_binaries={"plot.png": plot_png}),
    "broken_reference": Project("stations.tex", BROKEN_REFERENCE),
    "bibtex_paper": Project("docking.tex", BIBTEX_PAPER, side_files={"refs.bib": REFS_BIB}),
    "field_notes": Project("meadow.tex", FIELD_NOTES),
}
