"""autalk: a reproducible companion to Chen et al., "Talking Head Generation with Audio and
Speech Related Facial Action Units" (BMVC 2021).

The package is deliberately thin: data (corpus, preprocessing), networks and losses, and the
small helpers the numbered notebooks and the ``autalk`` command line share.
"""

__version__ = "0.1.0"

# The five speech-related AUs of the paper (section 3.1, Fig. 2), in the order used everywhere.
PAPER_AUS: tuple[int, ...] = (10, 14, 20, 25, 26)
FPS: int = 25  # GRID video frame rate
