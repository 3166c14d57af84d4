//! Photos and signatures as the server keeps and serves them (docs/attachments.md): their
//! metadata stripped but for when the picture was taken and which way up it is, and a small
//! JPEG thumbnail for the desk's and the phones' lists. Pure functions over the bytes; the
//! blob store calls them once, when an upload completes.
//!
//! What goes: EXIF but for `DateTimeOriginal`, `OffsetTimeOriginal` and `Orientation` (so GPS
//! position, camera make and model, serial numbers, software, owner names), XMP, IPTC and
//! every other application segment or text chunk. What stays: the pixels, untouched (the bytes
//! are not re-encoded), the JFIF header, the ICC colour profile and Adobe's colour transform.

use std::io::Cursor;

use bytes::Bytes;
use img_parts::{ImageEXIF, jpeg::Jpeg, png::Png, webp::WebP};

/// The longest edge of a thumbnail, in pixels.
pub const THUMBNAIL_EDGE: u32 = 320;
/// The most memory decoding one picture for its thumbnail may take.
const DECODE_MAX_BYTES: u64 = 256 << 20;
/// The widest or tallest picture a thumbnail is made of.
const DECODE_MAX_EDGE: u32 = 20_000;

/// The EXIF tags kept: when the picture was taken, and which way up it is.
const KEPT_TAGS: &[exif::Tag] = &[exif::Tag::DateTimeOriginal, exif::Tag::OffsetTimeOriginal, exif::Tag::Orientation];

/// The bytes of a picture of type `mime` (sniffed) without the metadata that can identify or
/// locate anyone; the bytes as they came for other types.
pub fn strip(bytes: Bytes, mime: &str) -> Result<Bytes, String> {
    let bad = |e: img_parts::Error| format!("unreadable {mime}: {e}");
    Ok(match mime {
        "image/jpeg" => {
            let mut jpeg = Jpeg::from_bytes(bytes).map_err(bad)?;
            let kept = kept_exif(jpeg.exif());
            jpeg.segments_mut().retain(|segment| kept_segment(segment.marker(), segment.contents()));
            jpeg.set_exif(kept);
            jpeg.encoder().bytes()
        }
        "image/png" => {
            let mut png = Png::from_bytes(bytes).map_err(bad)?;
            let kept = kept_exif(png.exif());
            png.chunks_mut().retain(|chunk| !matches!(&chunk.kind(), b"eXIf" | b"tEXt" | b"zTXt" | b"iTXt" | b"tIME"));
            png.set_exif(kept);
            png.encoder().bytes()
        }
        "image/webp" => {
            let mut webp = WebP::from_bytes(bytes).map_err(bad)?;
            let kept = kept_exif(webp.exif());
            webp.remove_chunks_by_id(*b"XMP ");
            // Also sets the flags of the extended header to what remains.
            webp.set_exif(kept);
            webp.encoder().bytes()
        }
        _ => bytes,
    })
}

/// Whether a JPEG segment stays: every segment of the picture itself, the JFIF header (APP0),
/// the ICC profile (APP2 `ICC_PROFILE`) and Adobe's colour transform (APP14); not EXIF or XMP
/// (APP1, put back by [`kept_exif`]), other application segments, or comments.
fn kept_segment(marker: u8, contents: &Bytes) -> bool {
    const APP0: u8 = 0xE0;
    const APP2: u8 = 0xE2;
    const APP14: u8 = 0xEE;
    const COM: u8 = 0xFE;
    match marker {
        APP0 | APP14 => true,
        APP2 => contents.starts_with(b"ICC_PROFILE\0"),
        0xE1..=0xEF | COM => false,
        _ => true,
    }
}

/// An EXIF block holding only the tags kept, or none when the picture had none of them.
fn kept_exif(exif: Option<Bytes>) -> Option<Bytes> {
    let read = exif::Reader::new().read_raw(exif?.to_vec()).ok()?;
    let fields: Vec<&exif::Field> =
        read.fields().filter(|f| f.ifd_num == exif::In::PRIMARY && KEPT_TAGS.contains(&f.tag)).collect();
    if fields.is_empty() {
        return None;
    }
    let mut writer = exif::experimental::Writer::new();
    for field in fields {
        writer.push_field(field);
    }
    let mut out = Cursor::new(Vec::new());
    writer.write(&mut out, read.little_endian()).ok()?;
    Some(Bytes::from(out.into_inner()))
}

/// A JPEG thumbnail of a picture of type `mime`, at most [`THUMBNAIL_EDGE`] pixels on its
/// longer edge, turned the way its EXIF orientation says, transparency on white (a signature
/// is dark strokes on nothing).
pub fn thumbnail(bytes: &[u8], mime: &str) -> Result<Vec<u8>, String> {
    use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
    let format = match mime {
        "image/jpeg" => ImageFormat::Jpeg,
        "image/png" => ImageFormat::Png,
        "image/webp" => ImageFormat::WebP,
        _ => return Err(format!("no thumbnail of {mime}")),
    };
    let failed = |e: image::ImageError| format!("no thumbnail of this {mime}: {e}");
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(DECODE_MAX_BYTES);
    limits.max_image_width = Some(DECODE_MAX_EDGE);
    limits.max_image_height = Some(DECODE_MAX_EDGE);
    let mut decoder = ImageReader::with_format(Cursor::new(bytes), format).into_decoder().map_err(failed)?;
    decoder.set_limits(limits).map_err(failed)?;
    let orientation = decoder.orientation().map_err(failed)?;
    let mut picture = DynamicImage::from_decoder(decoder).map_err(failed)?;
    picture.apply_orientation(orientation);
    // Made smaller, never larger.
    if picture.width() > THUMBNAIL_EDGE || picture.height() > THUMBNAIL_EDGE {
        picture = picture.thumbnail(THUMBNAIL_EDGE, THUMBNAIL_EDGE);
    }
    let small = picture.into_rgba8();
    let mut flat = image::RgbImage::new(small.width(), small.height());
    for (to, from) in flat.pixels_mut().zip(small.pixels()) {
        let [r, g, b, a] = from.0;
        let over_white = |c: u8| ((c as u32 * a as u32 + 255 * (255 - a as u32)) / 255) as u8;
        *to = image::Rgb([over_white(r), over_white(g), over_white(b)]);
    }
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80).encode_image(&flat).map_err(failed)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian EXIF block: a camera model, an orientation, a capture time and a GPS
    /// latitude (in its own directory).
    fn camera_exif() -> Vec<u8> {
        use exif::{Field, In, Tag, Value};
        let fields = [
            Field { tag: Tag::Model, ifd_num: In::PRIMARY, value: Value::Ascii(vec![b"Loopwork Phone 9".to_vec()]) },
            Field { tag: Tag::Orientation, ifd_num: In::PRIMARY, value: Value::Short(vec![6]) },
            Field {
                tag: Tag::DateTimeOriginal,
                ifd_num: In::PRIMARY,
                value: Value::Ascii(vec![b"2026:12:07 09:30:00".to_vec()]),
            },
            Field {
                tag: Tag::GPSLatitude,
                ifd_num: In::PRIMARY,
                value: Value::Rational(vec![(31, 1).into(), (14, 1).into(), (0, 1).into()]),
            },
        ];
        let mut writer = exif::experimental::Writer::new();
        for f in &fields {
            writer.push_field(f);
        }
        let mut out = Cursor::new(Vec::new());
        writer.write(&mut out, true).expect("exif");
        out.into_inner()
    }

    /// A 64×32 JPEG with the camera's EXIF, an XMP packet and a comment.
    fn camera_jpeg() -> Bytes {
        let picture = image::RgbImage::from_fn(64, 32, |x, _| image::Rgb([(x * 4) as u8, 90, 160]));
        let mut plain = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut plain).encode_image(&picture).expect("jpeg");
        let mut jpeg = Jpeg::from_bytes(Bytes::from(plain)).expect("parse");
        jpeg.set_exif(Some(Bytes::from(camera_exif())));
        let xmp = [&b"http://ns.adobe.com/xap/1.0/\0"[..], b"<x:xmpmeta>exif:GPSLatitude 31,14N</x:xmpmeta>"].concat();
        jpeg.segments_mut().insert(1, img_parts::jpeg::JpegSegment::new_with_contents(0xE1, Bytes::from(xmp)));
        jpeg.segments_mut()
            .insert(1, img_parts::jpeg::JpegSegment::new_with_contents(0xFE, Bytes::from("张三 13800001502")));
        jpeg.encoder().bytes()
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn a_jpeg_keeps_its_capture_time_and_orientation_and_loses_the_rest() {
        let original = camera_jpeg();
        assert!(contains(&original, b"Loopwork Phone 9") && contains(&original, b"GPSLatitude"));
        let stripped = strip(original.clone(), "image/jpeg").expect("strip");
        for gone in [&b"Loopwork Phone 9"[..], b"GPSLatitude", b"xmpmeta", "13800001502".as_bytes()] {
            assert!(!contains(&stripped, gone), "{} left", String::from_utf8_lossy(gone));
        }
        let exif = exif::Reader::new().read_from_container(&mut Cursor::new(stripped.to_vec())).expect("exif kept");
        let tags: Vec<exif::Tag> = exif.fields().map(|f| f.tag).collect();
        assert_eq!(tags.len(), 2, "{tags:?}");
        let taken = exif.get_field(exif::Tag::DateTimeOriginal, exif::In::PRIMARY).expect("capture time");
        assert_eq!(taken.display_value().to_string(), "2026-12-07 09:30:00");
        let turned = exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY).expect("orientation");
        assert_eq!(turned.value.get_uint(0), Some(6));
        // The pixels are the same bytes: the entropy-coded data is not re-encoded.
        let scan = |b: &Bytes| {
            Jpeg::from_bytes(b.clone()).expect("jpeg").segments().last().map(|s| s.clone().encoder().bytes())
        };
        assert_eq!(scan(&original), scan(&stripped));
    }

    #[test]
    fn a_thumbnail_is_turned_the_way_the_photo_says() {
        // Orientation 6: the camera was held on its side; the 64×32 picture shows 32×64.
        let small = thumbnail(&strip(camera_jpeg(), "image/jpeg").expect("strip"), "image/jpeg").expect("thumb");
        let read = image::load_from_memory(&small).expect("jpeg");
        assert_eq!((read.width(), read.height()), (32, 64));
        let big = image::RgbImage::from_pixel(1280, 960, image::Rgb([200, 30, 30]));
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(big).write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png).expect("png");
        let read = image::load_from_memory(&thumbnail(&png, "image/png").expect("thumb")).expect("jpeg");
        assert_eq!((read.width(), read.height()), (THUMBNAIL_EDGE, 240));
    }

    #[test]
    fn a_signature_s_transparency_is_white() {
        let mut strokes = image::RgbaImage::from_pixel(100, 40, image::Rgba([0, 0, 0, 0]));
        strokes.put_pixel(50, 20, image::Rgba([0, 0, 0, 255]));
        let mut png = Vec::new();
        image::DynamicImage::ImageRgba8(strokes)
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("png");
        let read = image::load_from_memory(&thumbnail(&png, "image/png").expect("thumb")).expect("jpeg").into_rgb8();
        assert!(read.get_pixel(5, 5).0.iter().all(|&c| c > 240), "background {:?}", read.get_pixel(5, 5));
    }

    #[test]
    fn a_png_s_text_goes() {
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(image::RgbImage::new(8, 8))
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("png");
        let mut parsed = Png::from_bytes(Bytes::from(png)).expect("parse");
        let text = img_parts::png::PngChunk::new(*b"tEXt", Bytes::from_static(b"Author\0Zhang San"));
        parsed.chunks_mut().insert(1, text);
        parsed.set_exif(Some(Bytes::from(camera_exif())));
        let stripped = strip(parsed.encoder().bytes(), "image/png").expect("strip");
        assert!(!contains(&stripped, b"Zhang San") && !contains(&stripped, b"Loopwork Phone 9"));
        assert!(image::load_from_memory(&stripped).is_ok());
    }

    #[test]
    fn unreadable_bytes_are_an_error_not_a_panic() {
        assert!(strip(Bytes::from_static(b"\xFF\xD8\xFF\xE1\x00"), "image/jpeg").is_err());
        assert!(thumbnail(b"\xFF\xD8\xFF\xE1\x00", "image/jpeg").is_err());
        let pdf = Bytes::from_static(b"%PDF-1.7 ...");
        assert_eq!(strip(pdf.clone(), "application/pdf").expect("as is"), pdf);
    }
}
