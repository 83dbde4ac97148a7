"""senet.image_io.load_image: hostile and unusual files at the Python level (the upload path is tested elsewhere)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hostile_files import RED, accepted_uploads, assert_human, big_phone_photo, rejected_uploads, upright_reference
from PIL import Image, ImageFile

from senet.image_io import ImageRejected, check_header, load_image, read_data_url

# Refusing or answering must take well under "a few seconds"; this only stops a hang from blocking the suite.
pytestmark = [pytest.mark.timeout(20), pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
              pytest.mark.filterwarnings("ignore:Corrupt EXIF data")]

ACCEPTED = accepted_uploads()
REJECTED = rejected_uploads()
BOMBS = [upload for upload in REJECTED if upload.reason == "too large"]


@pytest.mark.parametrize("upload", ACCEPTED, ids=lambda upload: upload.name)
@pytest.mark.parametrize("as_path", [False, True], ids=["bytes", "path"])
def test_unusual_images_are_accepted_as_upright_rgb(upload, as_path, tmp_path):
    source = upload.write(tmp_path) if as_path else upload.data
    image = load_image(source)
    assert image.mode == "RGB"
    assert image.size == upload.size
    assert "exif" not in image.info and "icc_profile" not in image.info
    if upload.centre is not None:
        centre = image.getpixel((image.width // 2, image.height // 2))
        assert np.abs(np.subtract(centre, upload.centre)).max() <= 16, (centre, upload.centre)
    if as_path:  # the result holds no open file: the upload can be deleted at once (and is, by the app)
        os.remove(source)
        image.load()
        assert getattr(image, "fp", None) is None


@pytest.mark.parametrize("upload", REJECTED, ids=lambda upload: upload.name)
@pytest.mark.parametrize("as_path", [False, True], ids=["bytes", "path"])
def test_hostile_files_are_refused_with_a_human_message(upload, as_path, tmp_path):
    source = upload.write(tmp_path) if as_path else upload.data
    with pytest.raises(ImageRejected) as caught:
        load_image(source)
    message = str(caught.value)
    assert upload.reason in message.lower(), message
    assert_human(message, str(tmp_path), upload.name)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_phone_photos_come_out_upright(orientation):
    upload = next(upload for upload in ACCEPTED if upload.name == f"phone_exif_{orientation}.jpg")
    loaded = np.asarray(load_image(upload.data), dtype=np.float32)
    expected = np.asarray(upright_reference(), dtype=np.float32)
    assert loaded.shape == expected.shape
    assert np.abs(loaded - expected).mean() < 8
    assert np.abs(loaded[5, 5] - RED).max() < 40  # the red quadrant is top-left, where the scene has it


@pytest.mark.parametrize("name", ["grey16_I16.png", "int32_I.tif", "float_F.tif"])
def test_high_bit_depth_keeps_its_contrast(name):
    """16/32-bit and float images are rescaled by their own range, not clipped to a flat white or black."""
    upload = next(upload for upload in ACCEPTED if upload.name == name)
    grey = np.asarray(load_image(upload.data))[:, :, 0].astype(int)
    assert grey[:, 0].max() < 10 and grey[:, -1].min() > 245
    assert (np.diff(grey[0]) >= 0).all()


def _jpeg(image: Image.Image, **params) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **params)
    return buffer.getvalue()


def test_big_phone_photo_is_decoded_at_reduced_scale():
    upload = big_phone_photo()
    image = load_image(upload.data)
    assert image.size == upload.size == (4000, 3000)
    assert image.getpixel((2000, 1500)) == pytest.approx(RED, abs=8)


@pytest.mark.parametrize("size", [(7999, 5999), (9001, 7001), (8000, 6000), (12649, 12649), (12640, 12640)])
def test_jpegs_just_over_the_limit_decode_at_the_next_scale(size):
    """Pillow's draft picks its scale as side // requested: asking for ceil(side / 2) kept 7999 x 5999 at 1/1."""
    data = _jpeg(Image.new("RGB", size, RED), quality=50)
    scale = next(s for s in (2, 4) if -(-size[0] // s) * -(-size[1] // s) <= 40_000_000)
    expected = (-(-size[0] // scale), -(-size[1] // scale))  # libjpeg rounds up
    assert check_header(data) == ("JPEG", expected)
    assert load_image(data).size == expected


def test_a_frame_mostly_missing_is_refused_but_whole_grey_pictures_are_not():
    from hostile_files import jpeg_over_frame

    with pytest.raises(ImageRejected, match="holds data for only about 2 %"):
        load_image(jpeg_over_frame(2000, 2000))
    assert load_image(jpeg_over_frame(300, 300)).size == (300, 300)  # 56 % of the frame is data: accepted
    assert load_image(_jpeg(Image.new("RGB", (64, 64), (128, 128, 128)))).size == (64, 64)


def test_header_checks_decode_nothing(monkeypatch):
    def no_decoding(self, *args, **kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    assert check_header(_jpeg(Image.new("RGB", (64, 48), RED))) == ("JPEG", (64, 48))
    for upload in BOMBS + [upload for upload in REJECTED if upload.reason in ("not an image", "empty")]:
        with pytest.raises(ImageRejected, match=upload.reason):
            check_header(upload.data)


def test_data_urls_are_size_checked_before_decoding():
    import base64

    png = next(upload for upload in ACCEPTED if upload.name == "rgba.png").data
    assert read_data_url("data:image/png;base64," + base64.b64encode(png).decode()) == png
    with pytest.raises(ImageRejected, match=r"too large \(22.5 MB\); the limit is 20 MB"):
        read_data_url("data:image/png;base64," + "A" * (30 * 2**20))  # refused from its length, never decoded
    for bad in ("http://example.com/a.png", "data:image/png;base64,@@@@", "", None):
        with pytest.raises(ImageRejected) as caught:
            read_data_url(bad)
        assert_human(str(caught.value))


@pytest.mark.parametrize("upload", BOMBS, ids=lambda upload: upload.name)
def test_bombs_are_refused_before_any_pixel_is_decoded(upload, monkeypatch):
    def no_decoding(self, *args, **kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    monkeypatch.setattr(Image.Image, "load", no_decoding)
    with pytest.raises(ImageRejected, match="too large"):
        load_image(upload.data)


@pytest.mark.parametrize("upload", BOMBS, ids=lambda upload: upload.name)
def test_bomb_limit_does_not_depend_on_pillows_global(upload, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # as a careless library might set it
    with pytest.raises(ImageRejected, match="too large"):
        load_image(upload.data)


def test_pillows_global_limit_is_left_alone():
    before = Image.MAX_IMAGE_PIXELS
    for upload in BOMBS:
        with pytest.raises(ImageRejected):
            load_image(upload.data)
    assert Image.MAX_IMAGE_PIXELS == before
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_limits_are_parameters():
    image = Image.new("RGB", (100, 20), RED)
    assert load_image(image).size == (100, 20)
    with pytest.raises(ImageRejected, match="too long and thin"):
        load_image(image, max_aspect=4)
    with pytest.raises(ImageRejected, match="too small"):
        load_image(image, min_side=32)
    with pytest.raises(ImageRejected, match="too large"):
        load_image(image, max_pixels=1000)
    with pytest.raises(ImageRejected, match="too large"):
        load_image(b"\0" * 2048, max_bytes=1024)


def test_oversized_file_is_refused_without_reading_it(tmp_path, monkeypatch):
    path = tmp_path / "big.jpg"
    with open(path, "wb") as handle:
        handle.truncate(21 * 2**20)  # sparse: 21 MB without writing them
    monkeypatch.setattr("builtins.open", lambda *args, **kwargs: pytest.fail("the file was opened"))
    with pytest.raises(ImageRejected, match="too large") as caught:
        load_image(path)
    assert "21 MB" in str(caught.value) and "20 MB" in str(caught.value)


def test_missing_sources(tmp_path):
    with pytest.raises(ImageRejected, match="upload an image first"):
        load_image(None)
    with pytest.raises(ImageRejected, match="could not be found") as caught:
        load_image(tmp_path / "gone.jpg")
    assert_human(str(caught.value), str(tmp_path))
    with pytest.raises(ImageRejected, match="not a regular file"):
        load_image(tmp_path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    with pytest.raises(ImageRejected, match="not a regular file"):
        load_image(fifo)


def test_pil_input_is_checked_converted_and_copied():
    source = Image.new("RGBA", (40, 30), (*RED, 255))
    image = load_image(source)
    assert image.mode == "RGB" and image is not source
    image.putpixel((0, 0), (0, 0, 0))
    assert source.getpixel((0, 0)) == (*RED, 255)
    with pytest.raises(ImageRejected, match="too small"):
        load_image(Image.new("RGB", (1, 1)))


def test_concurrent_loads_match_serial_loads():
    uploads = [upload for upload in ACCEPTED if upload.size and upload.size[0] * upload.size[1] < 10**5]
    serial = [np.asarray(load_image(upload.data)) for upload in uploads]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(lambda upload: np.asarray(load_image(upload.data)), uploads * 2))
    for index, array in enumerate(parallel):
        np.testing.assert_array_equal(array, serial[index % len(uploads)])
