//! Stripping as a stream: a picture is read once, front to back, and written as it is read.
//! What is held at once is one segment or chunk header, one JPEG segment before the first scan
//! (at most 64 KiB), or one EXIF block (at most [`MAX_EXIF_BYTES`]); the pixels' data passes
//! through in the reader's buffer, whatever the picture's size.

use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};

use crate::kept_exif;

/// Why a picture could not be stripped.
#[derive(Debug)]
pub enum StripError {
    /// The bytes are not a picture of their type, or one whose structure cannot be read: no
    /// use trying again.
    Unreadable(String),
    /// Reading or writing failed (the store, the disk): trying again may succeed.
    Io(io::Error),
}

impl std::fmt::Display for StripError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StripError::Unreadable(why) => write!(f, "{why}"),
            StripError::Io(e) => write!(f, "reading or writing the picture: {e}"),
        }
    }
}

impl From<io::Error> for StripError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            StripError::Unreadable("the picture ends in the middle of a segment".into())
        } else {
            StripError::Io(e)
        }
    }
}

fn unreadable(why: &str) -> StripError {
    StripError::Unreadable(why.to_owned())
}

/// The largest EXIF block read to keep its capture time and orientation; a larger one is
/// dropped whole.
pub const MAX_EXIF_BYTES: u64 = 1 << 20;

/// Copies the picture of type `mime` (sniffed) from `from` to `to` without the metadata that can
/// identify or locate anyone (the crate's documentation says what stays); other types are copied
/// as they are. Returns the number of bytes written. `to` is written from its current position;
/// a WebP's sizes and flags are put right by seeking back within what was written.
pub fn strip_stream<R: BufRead, W: Write + Seek>(mime: &str, mut from: R, mut to: W) -> Result<u64, StripError> {
    let start = to.stream_position()?;
    match mime {
        "image/jpeg" => jpeg(&mut from, &mut to)?,
        "image/png" => png(&mut from, &mut to)?,
        "image/webp" => webp(&mut from, &mut to, start)?,
        _ => {
            io::copy(&mut from, &mut to)?;
        }
    }
    to.flush()?;
    Ok(to.stream_position()? - start)
}

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const APP0: u8 = 0xE0;
const APP1: u8 = 0xE1;
const APP2: u8 = 0xE2;
const APP14: u8 = 0xEE;
const EXIF_PREFIX: &[u8] = b"Exif\0\0";

/// A JPEG, segment by segment up to the first scan, then its scans ([`scans`]). What stays
/// before the first scan: every segment of the picture itself, the JFIF header (APP0 `JFIF`,
/// without its thumbnail), the ICC profile (APP2 `ICC_PROFILE`), Adobe's colour transform (APP14
/// `Adobe`), and the first EXIF block's kept tags where it was; not XMP, other application
/// segments (MPF, JFXX thumbnails, IPTC, makers' own), later EXIF blocks, or comments.
fn jpeg(r: &mut impl BufRead, w: &mut impl Write) -> Result<(), StripError> {
    let mut soi = [0; 2];
    r.read_exact(&mut soi)?;
    if soi != [0xFF, SOI] {
        return Err(unreadable("not a JPEG: no start-of-image marker"));
    }
    w.write_all(&soi)?;
    let mut exif_seen = false;
    loop {
        // Stray bytes before a marker (some editors pad between segments; decoders skip them)
        // are skipped, never copied; then the marker's fill.
        while byte(r)?.ok_or_else(|| unreadable("a JPEG ends before its first scan"))? != 0xFF {}
        let mut marker = 0xFF;
        while marker == 0xFF {
            marker = byte(r)?.ok_or_else(|| unreadable("a JPEG ends in a marker's fill"))?;
        }
        match marker {
            EOI => {
                w.write_all(&[0xFF, EOI])?;
                return Ok(());
            }
            // Markers without a length (a repeated start of image among them): dropped.
            0x00 | 0x01 | 0xD0..=SOI => continue,
            _ => {}
        }
        let contents = segment(r)?;
        match marker {
            APP0 if contents.starts_with(b"JFIF\0") && contents.len() >= 12 => {
                // The header with no thumbnail: version, units, densities, then 0×0.
                write_segment(w, APP0, &[&contents[..12], &[0, 0][..]].concat())?;
            }
            // The first EXIF block's kept tags; later ones go with the other segments below.
            APP1 if contents.starts_with(EXIF_PREFIX) && !exif_seen => {
                exif_seen = true;
                if let Some(kept) = kept_exif(&contents[EXIF_PREFIX.len()..]) {
                    write_segment(w, APP1, &[EXIF_PREFIX, &kept].concat())?;
                }
            }
            APP2 if contents.starts_with(b"ICC_PROFILE\0") => write_segment(w, marker, &contents)?,
            APP14 if contents.starts_with(b"Adobe") => write_segment(w, marker, &contents)?,
            SOS => {
                write_segment(w, SOS, &contents)?;
                return scans(r, w);
            }
            marker if is_picture_segment(marker) => write_segment(w, marker, &contents)?,
            // Application segments, comments, reserved and extension markers.
            _ => {}
        }
    }
}

/// Whether a segment describes the picture itself (kept wherever it is): frame headers, Huffman
/// and arithmetic-coding tables, quantization tables, the number of lines, the restart
/// interval, hierarchical progression and expansion. Not the JPEG extensions (`JPG`, `JPGn`),
/// reserved markers, application segments or comments, which may hold anything.
fn is_picture_segment(marker: u8) -> bool {
    matches!(marker, 0xC0..=0xC7 | 0xC9..=0xCF | 0xDB..=0xDF)
}

/// The bytes after the first scan's header, cleaned as they pass: the entropy-coded data as it
/// is, the segments of later scans (tables, scan headers) kept, application segments and
/// comments between scans dropped, and everything after the end-of-image marker left unread (a
/// phone's second picture with its own EXIF, a motion photo's video, makers' trailers). A file
/// that ends without the marker gets one.
pub(crate) fn scans(r: &mut impl BufRead, w: &mut impl Write) -> Result<(), StripError> {
    loop {
        // Entropy-coded data up to the next 0xFF.
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let Some(at) = buf.iter().position(|&b| b == 0xFF) else {
            w.write_all(buf)?;
            let n = buf.len();
            r.consume(n);
            continue;
        };
        w.write_all(&buf[..at])?;
        r.consume(at + 1);
        // Fill before a marker: the last 0xFF is the marker's.
        let mut marker = 0xFF;
        while marker == 0xFF {
            match byte(r)? {
                Some(next) => marker = next,
                None => break,
            }
        }
        match marker {
            // The file ended after 0xFF.
            0xFF => break,
            // A stuffed 0xFF, a restart marker, a marker without a length: data.
            0x00 | 0xD0..=0xD7 | 0x01 => w.write_all(&[0xFF, marker])?,
            // The end, or a second picture's start where the first forgot its end.
            EOI | SOI => break,
            marker if marker == SOS || is_picture_segment(marker) => {
                let length = length(r)?;
                w.write_all(&[0xFF, marker])?;
                w.write_all(&(length as u16 + 2).to_be_bytes())?;
                copy(r, w, length)?;
            }
            // Application segments, comments, reserved and extension markers.
            _ => {
                let length = length(r)?;
                skip(r, length)?;
            }
        }
    }
    w.write_all(&[0xFF, EOI])?;
    Ok(())
}

/// The next byte, or `None` at the end.
fn byte(r: &mut impl BufRead) -> io::Result<Option<u8>> {
    let buf = r.fill_buf()?;
    let Some(&b) = buf.first() else { return Ok(None) };
    r.consume(1);
    Ok(Some(b))
}

/// A JPEG segment's length field: the number of bytes after it.
fn length(r: &mut impl Read) -> Result<u64, StripError> {
    let mut length = [0; 2];
    r.read_exact(&mut length)?;
    let length = u16::from_be_bytes(length);
    if length < 2 {
        return Err(unreadable("a JPEG segment's length is less than 2"));
    }
    Ok(u64::from(length - 2))
}

/// A JPEG segment's contents (at most 65,533 bytes).
fn segment(r: &mut impl Read) -> Result<Vec<u8>, StripError> {
    let length = length(r)?;
    read(r, length)
}

fn write_segment(w: &mut impl Write, marker: u8, contents: &[u8]) -> Result<(), StripError> {
    let length = u16::try_from(contents.len() + 2).map_err(|_| unreadable("a JPEG segment over 64 KiB"))?;
    w.write_all(&[0xFF, marker])?;
    w.write_all(&length.to_be_bytes())?;
    w.write_all(contents)?;
    Ok(())
}

/// Copies exactly `n` bytes.
fn copy(r: &mut impl Read, w: &mut impl Write, n: u64) -> Result<(), StripError> {
    if io::copy(&mut r.take(n), w)? != n {
        return Err(unreadable("the picture ends in the middle of a segment"));
    }
    Ok(())
}

/// Reads past exactly `n` bytes.
fn skip(r: &mut impl Read, n: u64) -> Result<(), StripError> {
    copy(r, &mut io::sink(), n)
}

/// Reads exactly `n` bytes (the caller bounds `n`).
fn read(r: &mut impl Read, n: u64) -> Result<Vec<u8>, StripError> {
    let mut out = vec![0; n as usize];
    r.read_exact(&mut out)?;
    Ok(out)
}

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

/// A PNG, chunk by chunk up to `IEND` (nothing after it is read; a file that ends without one
/// gets one): the `tEXt`, `zTXt`, `iTXt` and `tIME` chunks go; the first `eXIf` keeps only the
/// kept tags, where it was; every other chunk is copied as it is, its checksum with it.
fn png(r: &mut impl BufRead, w: &mut impl Write) -> Result<(), StripError> {
    let mut signature = [0; 8];
    r.read_exact(&mut signature)?;
    if signature != PNG_SIGNATURE {
        return Err(unreadable("not a PNG: no signature"));
    }
    w.write_all(&signature)?;
    let mut exif_seen = false;
    loop {
        if r.fill_buf()?.is_empty() {
            w.write_all(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82])?;
            return Ok(());
        }
        let mut head = [0; 8];
        r.read_exact(&mut head)?;
        let length = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        if length > 0x7FFF_FFFF {
            return Err(unreadable("a PNG chunk's length is over 2³¹ − 1"));
        }
        let kind: [u8; 4] = [head[4], head[5], head[6], head[7]];
        match &kind {
            b"eXIf" if !exif_seen && length <= MAX_EXIF_BYTES => {
                exif_seen = true;
                let exif = read(r, length)?;
                skip(r, 4)?;
                if let Some(kept) = kept_exif(&exif) {
                    let length = u32::try_from(kept.len()).map_err(|_| unreadable("EXIF over 4 GiB"))?;
                    let mut crc = crc32fast::Hasher::new();
                    crc.update(b"eXIf");
                    crc.update(&kept);
                    w.write_all(&length.to_be_bytes())?;
                    w.write_all(b"eXIf")?;
                    w.write_all(&kept)?;
                    w.write_all(&crc.finalize().to_be_bytes())?;
                }
            }
            b"eXIf" | b"tEXt" | b"zTXt" | b"iTXt" | b"tIME" => skip(r, length + 4)?,
            _ => {
                w.write_all(&head)?;
                copy(r, w, length + 4)?;
                if &kind == b"IEND" {
                    return Ok(());
                }
            }
        }
    }
}

/// The flags of a WebP's extended header (`VP8X`) that say it holds EXIF and XMP.
const VP8X_EXIF: u8 = 0x08;
const VP8X_XMP: u8 = 0x04;

/// A WebP, chunk by chunk within its RIFF size (nothing after it is read): `XMP ` goes; the
/// first `EXIF` keeps only the kept tags and moves to the end, where the format puts it (an
/// extended file only: a simple one cannot hold EXIF); every other chunk is copied as it is.
/// The RIFF size and the extended header's EXIF and XMP flags are then written to match.
fn webp(r: &mut impl BufRead, w: &mut (impl Write + Seek), start: u64) -> Result<(), StripError> {
    let mut head = [0; 12];
    r.read_exact(&mut head)?;
    if &head[..4] != b"RIFF" || &head[8..] != b"WEBP" {
        return Err(unreadable("not a WebP: no RIFF WEBP header"));
    }
    let mut left = u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]]))
        .checked_sub(4)
        .ok_or_else(|| unreadable("a WebP's RIFF size is less than 4"))?;
    w.write_all(&head)?;
    // After `WEBP`: the size the RIFF header gives.
    let mut written = 4u64;
    let mut vp8x_flags: Option<u8> = None;
    let mut exif: Option<Vec<u8>> = None;
    let mut exif_seen = false;
    while left >= 8 {
        let mut chunk = [0; 8];
        r.read_exact(&mut chunk)?;
        left -= 8;
        let size = u64::from(u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]));
        let padded = size + (size & 1);
        left = left.checked_sub(padded).ok_or_else(|| unreadable("a WebP chunk runs past the RIFF size"))?;
        match &chunk[..4] {
            b"EXIF" if !exif_seen && size <= MAX_EXIF_BYTES => {
                exif_seen = true;
                let block = read(r, size)?;
                skip(r, padded - size)?;
                // Some writers put JPEG's prefix before the TIFF header.
                let block = block.strip_prefix(EXIF_PREFIX).unwrap_or(&block);
                exif = kept_exif(block);
            }
            b"EXIF" | b"XMP " => skip(r, padded)?,
            b"VP8X" if written == 4 && size >= 1 => {
                if padded > MAX_EXIF_BYTES {
                    return Err(unreadable("a WebP's extended header is over 1 MiB"));
                }
                let payload = read(r, padded)?;
                vp8x_flags = Some(payload[0]);
                w.write_all(&chunk)?;
                w.write_all(&payload)?;
                written += 8 + padded;
            }
            _ => {
                w.write_all(&chunk)?;
                copy(r, w, padded)?;
                written += 8 + padded;
            }
        }
    }
    let Some(flags) = vp8x_flags else {
        return riff_size(w, start, written);
    };
    if let Some(exif) = &exif {
        let size = u32::try_from(exif.len()).map_err(|_| unreadable("EXIF over 4 GiB"))?;
        w.write_all(b"EXIF")?;
        w.write_all(&size.to_le_bytes())?;
        w.write_all(exif)?;
        written += 8 + u64::from(size);
        if size % 2 == 1 {
            w.write_all(&[0])?;
            written += 1;
        }
    }
    let flags = (flags & !(VP8X_EXIF | VP8X_XMP)) | if exif.is_some() { VP8X_EXIF } else { 0 };
    w.seek(SeekFrom::Start(start + 20))?;
    w.write_all(&[flags])?;
    riff_size(w, start, written)
}

/// Writes a WebP's RIFF size and leaves `w` at the end of what was written.
fn riff_size(w: &mut (impl Write + Seek), start: u64, written: u64) -> Result<(), StripError> {
    let size = u32::try_from(written).map_err(|_| unreadable("a WebP over 4 GiB"))?;
    w.seek(SeekFrom::Start(start + 4))?;
    w.write_all(&size.to_le_bytes())?;
    w.seek(SeekFrom::Start(start + 8 + written))?;
    Ok(())
}
