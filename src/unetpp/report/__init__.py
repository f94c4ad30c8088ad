"""Human-facing outputs built from results: overlays of instance contours and an HTML gallery."""

from unetpp.report.gallery import GalleryItem, write_gallery
from unetpp.report.overlay import draw_overlay, write_overlay

__all__ = ["GalleryItem", "draw_overlay", "write_gallery", "write_overlay"]
