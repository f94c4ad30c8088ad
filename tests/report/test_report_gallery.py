"""The HTML gallery: every image, totals at the top, escaped text, a variant without ground truth."""

from __future__ import annotations

from unetpp.report.gallery import GalleryItem, render_gallery, write_gallery


def _items():
    return [
        GalleryItem("abc", "overlays/abc.png", 256, 320, 12, 10, 0.8123, 0.55),
        GalleryItem('<b>&"x', "overlays/<b>&\"x.png", 64, 64, 0, 0, 1.0, 1.0),
        GalleryItem("z z", "overlays/z z.png", 10, 20, 3, 4, 0.25, 0.0),
    ]


def test_gallery_shows_every_image_with_its_figures_and_totals(tmp_path):
    path = write_gallery(tmp_path / "index.html", _items(), {"images": 3, "DSB2018 mAP": 0.51667}, title="run 1")
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<figure") == 3
    assert 'src="overlays/abc.png"' in page and 'src="overlays/z%20z.png"' in page
    assert "256x320" in page and "nuclei pred 12 / true 10" in page and "pixel IoU 0.8123" in page
    assert "AP 0.5500" in page and "ground truth" in page
    assert page.index("DSB2018 mAP") < page.index("<figure")  # totals first
    assert "<td>0.5167</td>" in page and "<td>3</td>" in page
    assert not list(tmp_path.glob("*.tmp"))


def test_gallery_escapes_names():
    page = render_gallery(_items(), {"a<b": "x&y"}, title="<t>")
    assert '<b>&"x' not in page and "&lt;b&gt;&amp;&quot;x" in page
    assert 'src="overlays/%3Cb%3E%26%22x.png"' in page
    assert "<th>a&lt;b</th><td>x&amp;y</td>" in page and "<title>&lt;t&gt;</title>" in page


def test_gallery_without_ground_truth_shows_counts_and_size_only():
    page = render_gallery([GalleryItem("p", "p_overlay.png", 30, 40, 7)], {"images": 1})
    assert "nuclei pred 7<" in page and "30x40" in page
    assert "true" not in page and "IoU" not in page and "AP " not in page and "ground truth" not in page
