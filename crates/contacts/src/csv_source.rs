//! Streaming CSV rows for imports, over any [`std::io::Read`], with exact byte offsets so
//! an import can stop after any row and [`CsvRows::resume`] later.
//!
//! ```text
//! CsvRows::open(reader, mobile_column) -> Result<CsvRows<R>, CsvError>   // reads the header
//! CsvRows::resume(reader, layout, offset, next_row) -> CsvRows<R>         // reader at `offset`
//! rows.layout() -> &CsvLayout                                             // serde: stored per upload
//! rows.next_item() -> Option<Result<CsvItem, CsvError>>                   // also an Iterator
//! CsvItem::Row(CsvRow { number, mobile, attributes, end_offset })
//! CsvItem::Rejected(RowRejection { number, raw, reason, message, end_offset })
//! ```
//!
//! What it reads:
//! - UTF-8, with or without a BOM (offsets count the BOM: they are offsets into the file);
//!   CRLF, LF or CR line ends; `"`-quoted fields with `""` escapes, delimiters and line
//!   breaks inside.
//! - The delimiter is `,`, `;` (spreadsheet exports in European locales) or tab: whichever
//!   occurs most outside quotes in the header line (`,` when none does).
//! - The header: blank lines before it are skipped; names are trimmed; an empty name is
//!   allowed and its column ignored; two names equal ignoring case are refused. The number
//!   column is `mobile_column` when given, else the first of [`NUMBER_COLUMN_NAMES`]
//!   present; both match ignoring case, with spaces and dashes read as `_`.
//!
//! Rows: `number` counts the records after the header from 1, blank ones included (an
//! empty line, or one whose cells are all blank, like Excel's `;;;`): such rows are
//! skipped but keep their number, so without line breaks inside cells a row's number is
//! its spreadsheet row minus the header. Per-row problems are [`RowRejection`]s and the
//! file goes on: more cells than the header (`WRONG_FIELD_COUNT`; fewer is fine as long
//! as the number cell is there, otherwise also `WRONG_FIELD_COUNT`), a cell that is not
//! UTF-8 (`NOT_UTF8`), a row over 1 MiB (`ROW_TOO_LONG`), and a quote still open at the
//! end of the file (`UNTERMINATED_QUOTE`: that row swallowed the rest of the file, so it
//! is the last one). Fatal for the file ([`CsvError`]): I/O errors and binary content (a
//! NUL byte anywhere, a header that is not UTF-8); rows before the fault are returned
//! first.
//!
//! Memory is one 64 KiB read buffer plus the current row (at most 1 MiB); the file is
//! never held whole.

use std::io::{self, Read};

use csv_core::{ReadRecordResult, Reader as CoreReader, ReaderBuilder as CoreBuilder};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Header names taken as the phone-number column, in order of preference.
pub const NUMBER_COLUMN_NAMES: &[&str] = &[
    "mobile",
    "phone",
    "phone_number",
    "mobile_number",
    "number",
    "whatsapp",
    "whatsapp_number",
    "msisdn",
    "contact",
    "tel",
    "telephone",
];

/// How a file is read, found by [`CsvRows::open`] and kept to [`CsvRows::resume`] it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsvLayout {
    /// `b','`, `b';'` or `b'\t'`.
    pub delimiter: u8,
    /// Header names, trimmed, BOM stripped.
    pub headers: Vec<String>,
    /// Index of the phone-number column in `headers`.
    pub mobile_index: usize,
    /// Byte offset of the first data row (after the header's line end).
    pub data_start: u64,
}

/// A problem with the whole file.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("the file is empty: there is no header row")]
    NoHeader,
    #[error("no phone-number column among the headers {headers:?}; name one \"mobile\" or say which one it is with mobile_column")]
    NoNumberColumn { headers: Vec<String> },
    #[error("there is no column {column:?} among the headers {headers:?}")]
    MobileColumnNotFound {
        column: String,
        headers: Vec<String>,
    },
    #[error("the header names the column {0:?} twice")]
    DuplicateHeader(String),
    #[error("the header row cannot be read: {0}")]
    BadHeader(&'static str),
    #[error("the file is not CSV text (it holds binary data); export it as CSV UTF-8")]
    Binary,
    #[error("the file could not be read: {0}")]
    Io(#[from] io::Error),
}

impl CsvError {
    /// Stable machine code, e.g. `"csv_no_header"`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoHeader => "csv_no_header",
            Self::NoNumberColumn { .. } => "csv_no_number_column",
            Self::MobileColumnNotFound { .. } => "csv_mobile_column_not_found",
            Self::DuplicateHeader(_) => "csv_duplicate_header",
            Self::BadHeader(_) => "csv_bad_header",
            Self::Binary => "csv_binary",
            Self::Io(_) => "csv_io",
        }
    }
}

/// One data row.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvRow {
    /// 1-based row number after the header (see the module doc).
    pub number: u64,
    /// The number cell as written (not trimmed).
    pub mobile: String,
    /// Every other named column with a non-blank value: header → trimmed value (string).
    pub attributes: Map<String, Value>,
    /// Byte offset just after this row (and its line end).
    pub end_offset: u64,
}

/// A row that could not be read; the file goes on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowRejection {
    pub number: u64,
    /// The row's text, at most [`RAW_CHARS`] characters.
    pub raw: String,
    /// `WRONG_FIELD_COUNT`, `NOT_UTF8`, `UNTERMINATED_QUOTE` or `ROW_TOO_LONG`.
    pub reason: &'static str,
    pub message: String,
    pub end_offset: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CsvItem {
    Row(CsvRow),
    Rejected(RowRejection),
}

/// How much of a rejected row is kept.
pub const RAW_CHARS: usize = 200;
/// Cell bytes of one row (or the header) beyond which it is refused, so an unclosed quote
/// cannot pull the rest of the file into memory.
const MAX_ROW_BYTES: usize = 1 << 20;
const MAX_FIELDS: usize = 1 << 14;
const BUFFER: usize = 64 * 1024;
/// Binary sniffing window at the start of the file.
const SNIFF: usize = 8 * 1024;
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Streaming rows of one CSV file.
pub struct CsvRows<R: Read> {
    layout: CsvLayout,
    input: Input<R>,
    core: CoreReader,
    fields: Vec<u8>,
    ends: Vec<usize>,
    next_row: u64,
    /// The end-of-file line end has been given to csv-core (see `read_record`).
    end_probed: bool,
    done: bool,
}

/// One raw record as csv-core split it.
struct Record {
    /// Cell bytes in `fields[..len]`, cell ends in `ends[..count]`.
    len: usize,
    count: usize,
    /// Over [`MAX_ROW_BYTES`] / [`MAX_FIELDS`]: the cells were not kept.
    overflow: bool,
    /// Ended by the end of the file inside a quoted field.
    open_quote: bool,
}

impl<R: Read> CsvRows<R> {
    /// Reads the header: skips a UTF-8 BOM, detects the delimiter (`,` `;` or tab, by
    /// counting outside quotes in the header line), finds the number column
    /// (`mobile_column` given = that header name, ignoring case; else the first of
    /// [`NUMBER_COLUMN_NAMES`] present).
    pub fn open(reader: R, mobile_column: Option<&str>) -> Result<Self, CsvError> {
        let mut input = Input::new(reader, 0);
        input.fill_to(SNIFF)?;
        let sniff = input.buffered();
        if sniff[..SNIFF.min(sniff.len())].contains(&0) {
            return Err(CsvError::Binary);
        }
        if input.buffered().starts_with(BOM) {
            input.consume(BOM.len());
        }
        // Blank lines before the header (not tabs: an unnamed first column of a TSV).
        loop {
            match input.peek()? {
                Some(b' ' | b'\r' | b'\n') => input.consume(1),
                Some(_) => break,
                None => return Err(CsvError::NoHeader),
            }
        }
        let delimiter = detect_delimiter(input.buffered());
        let mut rows = Self {
            layout: CsvLayout {
                delimiter,
                headers: Vec::new(),
                mobile_index: 0,
                data_start: 0,
            },
            core: core_reader(delimiter),
            input,
            fields: vec![0; 1024],
            ends: vec![0; 64],
            next_row: 1,
            end_probed: false,
            done: false,
        };
        let record = rows.read_record()?.ok_or(CsvError::NoHeader)?;
        if record.open_quote {
            return Err(CsvError::BadHeader(
                "a quote in the header row is never closed",
            ));
        }
        if record.overflow {
            return Err(CsvError::BadHeader("the header row is longer than 1 MiB"));
        }
        let mut headers = Vec::with_capacity(record.count);
        for i in 0..record.count {
            let cell = std::str::from_utf8(rows.cell(i)).map_err(|_| CsvError::Binary)?;
            headers.push(
                cell.trim_matches(|c: char| c.is_whitespace() || c == '\u{FEFF}')
                    .to_owned(),
            );
        }
        if headers.iter().all(String::is_empty) {
            return Err(CsvError::NoHeader);
        }
        for (i, name) in headers.iter().enumerate() {
            let lower = name.to_lowercase();
            if !name.is_empty() && headers[..i].iter().any(|h| h.to_lowercase() == lower) {
                return Err(CsvError::DuplicateHeader(name.clone()));
            }
        }
        let mobile_index = match mobile_column {
            Some(column) => {
                let wanted = column_key(column);
                headers
                    .iter()
                    .position(|h| !h.is_empty() && column_key(h) == wanted)
                    .ok_or_else(|| CsvError::MobileColumnNotFound {
                        column: column.trim().to_owned(),
                        headers: headers.clone(),
                    })?
            }
            None => {
                let keys: Vec<String> = headers.iter().map(|h| column_key(h)).collect();
                NUMBER_COLUMN_NAMES
                    .iter()
                    .find_map(|name| keys.iter().position(|k| k == name))
                    .ok_or_else(|| CsvError::NoNumberColumn {
                        headers: headers.clone(),
                    })?
            }
        };
        rows.layout.headers = headers;
        rows.layout.mobile_index = mobile_index;
        rows.layout.data_start = rows.input.offset;
        Ok(rows)
    }

    /// Continues a file from a byte offset: `reader` is positioned at `offset` (a row
    /// boundary previously returned as some row's `end_offset`, or `layout.data_start`),
    /// and the next row gets number `next_row`.
    pub fn resume(reader: R, layout: CsvLayout, offset: u64, next_row: u64) -> Self {
        Self {
            core: core_reader(layout.delimiter),
            layout,
            input: Input::new(reader, offset),
            fields: vec![0; 1024],
            ends: vec![0; 64],
            next_row,
            end_probed: false,
            done: false,
        }
    }

    pub fn layout(&self) -> &CsvLayout {
        &self.layout
    }

    /// The next row, a per-row rejection, `None` at the end, or a fatal error (I/O;
    /// binary data such as NUL bytes). After `None` or an error, always `None`.
    pub fn next_item(&mut self) -> Option<Result<CsvItem, CsvError>> {
        if self.done {
            return None;
        }
        let item = self.read_item();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }

    fn read_item(&mut self) -> Option<Result<CsvItem, CsvError>> {
        loop {
            match self.skip_blank_lines() {
                Ok(blank) => self.next_row += blank,
                Err(e) => return Some(Err(e)),
            }
            let record = match self.read_record() {
                Ok(Some(record)) => record,
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            };
            let number = self.next_row;
            self.next_row += 1;
            if let Some(item) = self.item(number, &record) {
                return Some(Ok(item));
            }
        }
    }

    /// The row or rejection for `record`; `None` for a blank row.
    fn item(&self, number: u64, record: &Record) -> Option<CsvItem> {
        let end_offset = self.input.offset;
        let reject = |reason: &'static str, message: String| {
            Some(CsvItem::Rejected(RowRejection {
                number,
                raw: self.raw(record),
                reason,
                message,
                end_offset,
            }))
        };
        if record.open_quote {
            return reject(
                "UNTERMINATED_QUOTE",
                "A quoted cell that starts in this row is never closed, so the rest of the file was read as part of it.".to_owned(),
            );
        }
        if record.overflow {
            return reject("ROW_TOO_LONG", "The row is longer than 1 MiB.".to_owned());
        }
        if (0..record.count).all(|i| self.cell(i).iter().all(u8::is_ascii_whitespace)) {
            return None;
        }
        let columns = self.layout.headers.len();
        if record.count > columns {
            return reject(
                "WRONG_FIELD_COUNT",
                format!(
                    "The row has {} cells but the header has {columns}.",
                    record.count
                ),
            );
        }
        if record.count <= self.layout.mobile_index {
            return reject(
                "WRONG_FIELD_COUNT",
                format!(
                    "The row has {} cells and so no cell for the number column {:?} (column {}).",
                    record.count,
                    self.layout.headers[self.layout.mobile_index],
                    self.layout.mobile_index + 1
                ),
            );
        }
        // One UTF-8 check for the row; a cell must then also start and end on character
        // boundaries (two cells could split one character).
        let text = std::str::from_utf8(&self.fields[..record.len]).ok();
        let mut mobile = None;
        let mut attributes = Map::new();
        for i in 0..record.count {
            let (start, end) = self.cell_span(i);
            let Some(cell) = text.and_then(|t| t.get(start..end)) else {
                let column = (i..record.count)
                    .find(|&c| std::str::from_utf8(self.cell(c)).is_err())
                    .unwrap_or(i);
                return reject(
                    "NOT_UTF8",
                    format!(
                        "The cell in column {} is not UTF-8 text; save the file as CSV UTF-8.",
                        column + 1
                    ),
                );
            };
            if i == self.layout.mobile_index {
                mobile = Some(cell.to_owned());
                continue;
            }
            let name = &self.layout.headers[i];
            let value = cell.trim();
            if !name.is_empty() && !value.is_empty() {
                attributes.insert(name.clone(), Value::String(value.to_owned()));
            }
        }
        Some(CsvItem::Row(CsvRow {
            number,
            // Present: `record.count > mobile_index` was checked above.
            mobile: mobile.unwrap_or_default(),
            attributes,
            end_offset,
        }))
    }

    fn cell_span(&self, i: usize) -> (usize, usize) {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        (start, self.ends[i])
    }

    fn cell(&self, i: usize) -> &[u8] {
        let (start, end) = self.cell_span(i);
        &self.fields[start..end]
    }

    /// The record's cells joined by the delimiter, lossily decoded, truncated.
    fn raw(&self, record: &Record) -> String {
        let mut raw = String::new();
        let count = if record.overflow { 0 } else { record.count };
        for i in 0..count {
            if i > 0 {
                raw.push(char::from(self.layout.delimiter));
            }
            raw.push_str(&String::from_utf8_lossy(self.cell(i)));
            if raw.len() > RAW_CHARS * 4 {
                break;
            }
        }
        if record.overflow {
            let start = &self.fields[..record.len.min(RAW_CHARS * 4)];
            raw.push_str(&String::from_utf8_lossy(start));
        }
        match raw.char_indices().nth(RAW_CHARS) {
            Some((cut, _)) => {
                raw.truncate(cut);
                raw.push('…');
                raw
            }
            None => raw,
        }
    }

    /// Consumes empty lines at a record start; returns how many.
    fn skip_blank_lines(&mut self) -> Result<u64, CsvError> {
        let mut blank = 0;
        loop {
            match self.input.peek()? {
                Some(b'\n') => self.input.consume(1),
                Some(b'\r') => {
                    self.input.consume(1);
                    if self.input.peek()? == Some(b'\n') {
                        self.input.consume(1);
                    }
                }
                _ => return Ok(blank),
            }
            blank += 1;
        }
    }

    /// The next record, its line end included; `None` at the end of the file.
    fn read_record(&mut self) -> Result<Option<Record>, CsvError> {
        let (mut len, mut count) = (0, 0);
        let mut overflow = false;
        let mut open_quote = false;
        let mut scratch = [0u8; 256];
        let mut scratch_ends = [0usize; 16];
        loop {
            if self.input.buffered().is_empty() {
                self.input.fill()?;
            }
            // At the end of the file csv-core is first given one line end of our own: a
            // parser inside a quoted field takes it into the field (the quote was never
            // closed), otherwise it ends the record as the end of input would. csv-core
            // keeps no other way to ask (and its `Clone` loses the parse tables).
            let at_end = self.input.buffered().is_empty();
            let probe = at_end && !self.end_probed;
            let data: &[u8] = match (at_end, probe) {
                (false, _) => self.input.buffered(),
                (true, true) => b"\n",
                (true, false) => b"",
            };
            let (result, nin, nout, nend) = if overflow {
                self.core.read_record(data, &mut scratch, &mut scratch_ends)
            } else {
                self.core
                    .read_record(data, &mut self.fields[len..], &mut self.ends[count..])
            };
            let last = nin.checked_sub(1).and_then(|i| data.get(i)).copied();
            if probe {
                // Taken into a field: the quote is open. (Output full: retry after growing.)
                match result {
                    ReadRecordResult::InputEmpty => {
                        self.end_probed = true;
                        open_quote = true;
                    }
                    ReadRecordResult::Record | ReadRecordResult::End => self.end_probed = true,
                    ReadRecordResult::OutputFull | ReadRecordResult::OutputEndsFull => {}
                }
            } else {
                self.input.consume(nin);
                if self.input.nul_before_offset() {
                    return Err(CsvError::Binary);
                }
            }
            if !overflow {
                len += nout;
                count += nend;
            }
            match result {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull if !overflow => {
                    if self.fields.len() >= MAX_ROW_BYTES {
                        overflow = true;
                    } else {
                        let grown = (self.fields.len() * 2).min(MAX_ROW_BYTES);
                        self.fields.resize(grown, 0);
                    }
                }
                ReadRecordResult::OutputEndsFull if !overflow => {
                    if self.ends.len() >= MAX_FIELDS {
                        overflow = true;
                    } else {
                        let grown = (self.ends.len() * 2).min(MAX_FIELDS);
                        self.ends.resize(grown, 0);
                    }
                }
                ReadRecordResult::OutputFull | ReadRecordResult::OutputEndsFull => {}
                ReadRecordResult::Record => {
                    // csv-core ends a record at the CR of a CRLF; the LF belongs to it too.
                    if !at_end && last == Some(b'\r') && self.input.peek()? == Some(b'\n') {
                        self.input.consume(1);
                    }
                    return Ok(Some(Record {
                        len,
                        count,
                        overflow,
                        open_quote,
                    }));
                }
                ReadRecordResult::End => return Ok(None),
            }
        }
    }
}

impl<R: Read> Iterator for CsvRows<R> {
    type Item = Result<CsvItem, CsvError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_item()
    }
}

fn core_reader(delimiter: u8) -> CoreReader {
    CoreBuilder::new().delimiter(delimiter).build()
}

/// Counts `,` `;` and tabs outside quotes up to the first line end outside quotes.
fn detect_delimiter(header: &[u8]) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in header {
        match b {
            b'"' => quoted = !quoted,
            b'\r' | b'\n' if !quoted => break,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let candidates = [b',', b';', b'\t'];
    let mut best = 0;
    for i in 1..3 {
        if counts[i] > counts[best] {
            best = i;
        }
    }
    candidates[best]
}

/// A header name as compared with [`NUMBER_COLUMN_NAMES`]: trimmed, lower case, spaces
/// and dashes as `_`.
fn column_key(name: &str) -> String {
    name.trim()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .flat_map(char::to_lowercase)
        .collect()
}

/// The byte source with its absolute offset.
struct Input<R> {
    reader: R,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    eof: bool,
    /// Offset in the file of `buf[start]`.
    offset: u64,
    /// Offset of the first NUL byte read, if any.
    nul: Option<u64>,
}

impl<R: Read> Input<R> {
    fn new(reader: R, offset: u64) -> Self {
        Self {
            reader,
            buf: vec![0; BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            offset,
            nul: None,
        }
    }

    fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.offset += n as u64;
    }

    /// Whether a NUL byte has been consumed.
    fn nul_before_offset(&self) -> bool {
        self.nul.is_some_and(|at| at < self.offset)
    }

    /// The next byte without consuming it; `None` at the end of the file.
    fn peek(&mut self) -> io::Result<Option<u8>> {
        if self.start == self.end {
            self.fill()?;
        }
        Ok(self.buffered().first().copied())
    }

    /// Reads more once everything buffered is consumed (a no-op otherwise or at EOF).
    fn fill(&mut self) -> io::Result<()> {
        if self.start < self.end || self.eof {
            return Ok(());
        }
        self.start = 0;
        self.end = 0;
        self.read_more()
    }

    /// Appends to the buffer until it holds `want` bytes or the file ends.
    fn fill_to(&mut self, want: usize) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while self.end < want.min(self.buf.len()) && !self.eof {
            self.read_more()?;
        }
        Ok(())
    }

    fn read_more(&mut self) -> io::Result<()> {
        loop {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    let new = &self.buf[self.end..self.end + n];
                    // `contains` is memchr; the position is only needed once.
                    if self.nul.is_none() && new.contains(&0) {
                        let i = new.iter().position(|&b| b == 0).unwrap_or(0);
                        self.nul = Some(self.offset + (self.end - self.start + i) as u64);
                    }
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::phone::{normalize, Region};
    use std::io::{Cursor, Seek, SeekFrom};

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(path).unwrap()
    }

    fn items<R: Read>(rows: CsvRows<R>) -> Vec<CsvItem> {
        rows.map(Result::unwrap).collect()
    }

    fn all(data: &[u8]) -> Vec<CsvItem> {
        items(CsvRows::open(data, None).unwrap())
    }

    fn row(item: &CsvItem) -> &CsvRow {
        match item {
            CsvItem::Row(row) => row,
            CsvItem::Rejected(r) => panic!("rejected: {r:?}"),
        }
    }

    fn rejection(item: &CsvItem) -> &RowRejection {
        match item {
            CsvItem::Rejected(r) => r,
            CsvItem::Row(row) => panic!("accepted: {row:?}"),
        }
    }

    fn attr<'a>(row: &'a CsvRow, key: &str) -> Option<&'a str> {
        row.attributes.get(key).and_then(Value::as_str)
    }

    fn open_err(data: &[u8], mobile_column: Option<&str>) -> CsvError {
        match CsvRows::open(data, mobile_column) {
            Ok(rows) => panic!("opened: {:?}", rows.layout()),
            Err(e) => e,
        }
    }

    /// A reader that hands out one byte per `read`, to cross every buffer boundary.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((&b, rest)), Some(slot)) => {
                    *slot = b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn messy_numbers_fixture() {
        let items = all(&fixture("messy_numbers.csv"));
        let expected = String::from_utf8(fixture("messy_numbers.expected.csv")).unwrap();
        let expected: Vec<(u64, &str)> = expected
            .lines()
            .skip(1)
            .map(|line| {
                let (row, outcome) = line.split_once(',').unwrap();
                (row.parse().unwrap(), outcome)
            })
            .collect();
        assert_eq!(items.len(), 42);
        assert_eq!(expected.len(), items.len());
        for (item, (number, outcome)) in items.iter().zip(&expected) {
            let row = row(item);
            assert_eq!(row.number, *number);
            let got = match normalize(&row.mobile, Region::IN) {
                Ok(n) => n.mobile,
                Err(reason) => reason.code().to_owned(),
            };
            assert_eq!(got, *outcome, "row {number}: {:?}", row.mobile);
        }
        // The same person with and without Brazil's 9th digit.
        assert_eq!(row(&items[19]).attributes, row(&items[20]).attributes);
        // Untrimmed number cell; empty cells are absent; quoted commas.
        assert_eq!(row(&items[9]).mobile, "  +91 98765 43219  ");
        assert_eq!(attr(row(&items[3]), "age"), None);
        assert_eq!(attr(row(&items[3]), "city"), Some("Chennai"));
        assert_eq!(attr(row(&items[41]), "name"), Some("Iyer, Lakshmi"));
        assert_eq!(attr(row(&items[41]), "city"), Some("Chennai, TN"));
        assert_eq!(attr(row(&items[24]), "name"), Some("Hans Müller"));
        assert!(!row(&items[0]).attributes.contains_key("mobile"));
    }

    #[test]
    fn spreadsheet_export_fixture() {
        let data = fixture("spreadsheet_export.csv");
        assert!(data.starts_with(BOM));
        let rows = CsvRows::open(&data[..], None).unwrap();
        let header = "Name;Phone;City\r\n".len() as u64;
        assert_eq!(
            rows.layout(),
            &CsvLayout {
                delimiter: b';',
                headers: vec!["Name".into(), "Phone".into(), "City".into()],
                mobile_index: 1,
                data_start: 3 + header,
            }
        );
        let items = items(rows);
        assert_eq!(items.len(), 5);
        let first = row(&items[0]);
        assert_eq!(first.number, 1);
        assert_eq!(first.mobile, "+91 98765 43210");
        assert_eq!(
            first.end_offset,
            3 + header + "Asha Rao;+91 98765 43210;Mumbai\r\n".len() as u64
        );
        let muller = row(&items[1]);
        assert_eq!(attr(muller, "Name"), Some("Müller; Jörg"));
        assert_eq!(attr(muller, "City"), Some("Berlin\nMitte"));
        assert_eq!(
            normalize(&muller.mobile, Region::DE).unwrap().mobile,
            "4915123456789"
        );
        assert_eq!(attr(row(&items[2]), "City"), Some("São Paulo"));
        assert_eq!(attr(row(&items[3]), "Name"), Some("Smith, \"JJ\""));
        let last = row(&items[4]);
        assert_eq!((last.number, last.mobile.as_str()), (5, "919876543211"));
        assert_eq!(attr(last, "City"), None);
        // The trailing ";;" row is blank: skipped; the last row ends before it.
        assert_eq!(last.end_offset, data.len() as u64 - 4);
        assert_eq!(
            normalize(&last.mobile, Region::IN).unwrap().mobile,
            "919876543211"
        );
        // Byte by byte, the same.
        let trickled = self::items(CsvRows::open(Trickle(&data), None).unwrap());
        assert_eq!(trickled, items);
    }

    fn ten_rows(newline: &str, bom: bool) -> Vec<u8> {
        let mut text = String::new();
        if bom {
            text.push('\u{FEFF}');
        }
        text.push_str(&format!("name,mobile,note{newline}"));
        for i in 1..=10 {
            match i {
                3 => text.push_str(&format!(
                    "\"Row, {i}\",+91 98765 4321{},\"two{newline}lines\"{newline}",
                    i % 10
                )),
                6 => text.push_str(&format!("{newline}Row {i},98765 4321{},{newline}", i % 10)),
                8 => text.push_str(&format!(
                    "\"Row \"\"{i}\"\"\",\"98765{newline}4321{}\",\"a{newline}{newline}b\"{newline}",
                    i % 10
                )),
                _ => text.push_str(&format!("Row {i},98765 4321{},n{i}{newline}", i % 10)),
            }
        }
        text.into_bytes()
    }

    #[test]
    fn resume_at_every_row_end() {
        for newline in ["\r\n", "\n", "\r"] {
            for bom in [false, true] {
                let data = ten_rows(newline, bom);
                let rows = CsvRows::open(&data[..], None).unwrap();
                let layout = rows.layout().clone();
                let items = items(rows);
                assert_eq!(items.len(), 10, "{newline:?}");
                // The blank line before row 6 keeps its number.
                let numbers: Vec<u64> = items.iter().map(|i| row(i).number).collect();
                assert_eq!(numbers, [1, 2, 3, 4, 5, 7, 8, 9, 10, 11]);
                assert_eq!(
                    attr(row(&items[2]), "note"),
                    Some(&*format!("two{newline}lines"))
                );
                assert_eq!(row(&items[7]).mobile, format!("98765{newline}43218"));
                assert_eq!(row(&items[9]).end_offset, data.len() as u64);

                let from_start = CsvRows::resume(
                    Cursor::new(&data[layout.data_start as usize..]),
                    layout.clone(),
                    layout.data_start,
                    1,
                );
                assert_eq!(self::items(from_start), items);
                for (k, item) in items.iter().enumerate() {
                    let row = row(item);
                    let mut file = Cursor::new(&data[..]);
                    file.seek(SeekFrom::Start(row.end_offset)).unwrap();
                    let rest =
                        CsvRows::resume(file, layout.clone(), row.end_offset, row.number + 1);
                    assert_eq!(
                        self::items(rest),
                        items[k + 1..],
                        "{newline:?} after row {}",
                        row.number
                    );
                }
                let trickled = self::items(CsvRows::open(Trickle(&data), None).unwrap());
                assert_eq!(trickled, items);
            }
        }
    }

    #[test]
    fn field_counts() {
        let data = b"name,mobile,city,age\nA,98765 43210\nB,98765 43211,Pune,30,extra\nC\n,98765 43212,,\n";
        let items = all(data);
        assert_eq!(items.len(), 4);
        let short = row(&items[0]);
        assert_eq!(short.mobile, "98765 43210");
        assert_eq!(short.attributes.len(), 1);
        let long = rejection(&items[1]);
        assert_eq!((long.number, long.reason), (2, "WRONG_FIELD_COUNT"));
        assert_eq!(long.raw, "B,98765 43211,Pune,30,extra");
        assert_eq!(long.end_offset, 21 + 14 + 28);
        let missing = rejection(&items[2]);
        assert_eq!((missing.number, missing.reason), (3, "WRONG_FIELD_COUNT"));
        assert!(
            missing.message.contains("\"mobile\""),
            "{}",
            missing.message
        );
        assert!(row(&items[3]).attributes.is_empty());
    }

    #[test]
    fn not_utf8_row() {
        let data = b"name,mobile\nJos\xe9,98765 43210\nAna,98765 43211\n";
        let items = all(data);
        let bad = rejection(&items[0]);
        assert_eq!((bad.number, bad.reason), (1, "NOT_UTF8"));
        assert_eq!(bad.raw, "Jos\u{FFFD},98765 43210");
        assert_eq!(row(&items[1]).number, 2);
    }

    #[test]
    fn unterminated_quote() {
        let data = b"name,mobile\nA,98765 43210\n\"B,98765 43211\nC,98765 43212\n";
        let items = all(data);
        assert_eq!(items.len(), 2);
        assert_eq!(row(&items[0]).number, 1);
        let open = rejection(&items[1]);
        assert_eq!((open.number, open.reason), (2, "UNTERMINATED_QUOTE"));
        assert_eq!(open.end_offset, data.len() as u64);
        assert!(open.raw.starts_with("B,98765 43211\nC"), "{}", open.raw);

        // Megabytes inside the open quote: memory stays bounded, no hang.
        let mut big = b"mobile,note\n98765 43210,\"".to_vec();
        big.extend(std::iter::repeat_n(b'x', 3 << 20));
        let mut rows2 = CsvRows::open(&big[..], None).unwrap();
        let first = rows2.next_item().unwrap().unwrap();
        assert_eq!(rejection(&first).reason, "UNTERMINATED_QUOTE");
        assert!(rows2.fields.len() <= MAX_ROW_BYTES);
        assert!(rejection(&first).raw.chars().count() <= RAW_CHARS + 1);
        assert!(rows2.next_item().is_none());

        // A quote inside an unquoted cell is a character, even on a last line without
        // a line end.
        let items = all(b"name,mobile,height\nA,98765 43210,5'10\"");
        assert_eq!(attr(row(&items[0]), "height"), Some("5'10\""));
    }

    #[test]
    fn row_too_long() {
        let mut data = b"mobile,note\n98765 43210,".to_vec();
        data.extend(std::iter::repeat_n(b'y', 2 << 20));
        data.extend_from_slice(b"\n98765 43211,ok\n");
        let items = all(&data);
        assert_eq!(rejection(&items[0]).reason, "ROW_TOO_LONG");
        assert_eq!(row(&items[1]).number, 2);
        assert_eq!(attr(row(&items[1]), "note"), Some("ok"));
    }

    #[test]
    fn binary_files() {
        assert!(matches!(
            open_err(b"mobile\n\x00\x01\x02", None),
            CsvError::Binary
        ));
        let utf16: Vec<u8> = "mobile\r\n9876543210\r\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert!(matches!(open_err(&utf16, None), CsvError::Binary));
        assert!(matches!(
            open_err(b"mob\xffile,name\n1,2\n", None),
            CsvError::Binary
        ));

        // NUL far into the file: the rows before it, then the error, then nothing.
        let mut data = b"mobile,name\n".to_vec();
        for i in 0..1000 {
            data.extend_from_slice(format!("98765{i:05},Name {i}\n").as_bytes());
        }
        data.extend_from_slice(b"98765 43210,\x00\x00\n98765 43211,after\n");
        let mut rows = CsvRows::open(&data[..], None).unwrap();
        let mut read = 0;
        let error = loop {
            match rows.next_item() {
                Some(Ok(item)) => {
                    row(&item);
                    read += 1;
                }
                Some(Err(e)) => break e,
                None => panic!("no error"),
            }
        };
        assert_eq!(read, 1000);
        assert_eq!(error.code(), "csv_binary");
        assert!(rows.next_item().is_none());
    }

    #[test]
    fn no_header() {
        for data in [
            &b""[..],
            BOM,
            b"  \r\n\n \n",
            b"\xEF\xBB\xBF\r\n",
            b",,\n1,2\n",
        ] {
            assert!(
                matches!(open_err(data, None), CsvError::NoHeader),
                "{data:?}"
            );
        }
    }

    #[test]
    fn header_only_and_bad_headers() {
        for data in [
            &b"name,mobile"[..],
            b"name,mobile\r\n",
            b"\xEF\xBB\xBFname;mobile\r\n\r\n",
        ] {
            let rows = CsvRows::open(data, None).unwrap();
            assert_eq!(
                rows.layout().data_start,
                data.len() as u64 - u64::from(data.ends_with(b"\r\n\r\n")) * 2
            );
            assert!(items(rows).is_empty());
        }
        let err = open_err(b"name,\"mobile\n1,2\n", None);
        assert_eq!(err.code(), "csv_bad_header");
        let mut long = vec![b'a'; 2 << 20];
        long.extend_from_slice(b",mobile\n");
        assert_eq!(open_err(&long, None).code(), "csv_bad_header");
    }

    #[test]
    fn number_column() {
        let err = open_err(b"name,city\nA,B\n", None);
        assert_eq!(err.code(), "csv_no_number_column");
        match &err {
            CsvError::NoNumberColumn { headers } => assert_eq!(headers, &["name", "city"]),
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("mobile_column"));
        // Named explicitly, ignoring case, spaces and dashes.
        let rows = CsvRows::open(&b"name,Cell No\nA,98765 43210\n"[..], Some("cell-no")).unwrap();
        assert_eq!(rows.layout().mobile_index, 1);
        let err = open_err(b"name,city\nA,B\n", Some("Cell"));
        assert_eq!(err.code(), "csv_mobile_column_not_found");
        // By preference order, not position; header names normalised.
        let rows = CsvRows::open(&b"Phone,Mobile\n1,2\n"[..], None).unwrap();
        assert_eq!(rows.layout().mobile_index, 1);
        let rows = CsvRows::open(&b"Name, WhatsApp Number ,x\n"[..], None).unwrap();
        assert_eq!(rows.layout().mobile_index, 1);
        assert_eq!(rows.layout().headers[1], "WhatsApp Number");
        let rows = CsvRows::open(&b"name,Phone-Number\n"[..], None).unwrap();
        assert_eq!(rows.layout().mobile_index, 1);
    }

    #[test]
    fn duplicate_and_empty_headers() {
        match open_err(b"name,mobile,Name\n", None) {
            CsvError::DuplicateHeader(name) => assert_eq!(name, "Name"),
            other => panic!("{other:?}"),
        }
        let items = all(b"mobile,,city,\n98765 43210,x,Pune,y\n");
        let row = row(&items[0]);
        assert_eq!(row.attributes.len(), 1);
        assert_eq!(attr(row, "city"), Some("Pune"));
    }

    #[test]
    fn delimiters() {
        let rows =
            CsvRows::open(&b"name\tmobile\tcity\nA\t98765 43210\tPune, MH\n"[..], None).unwrap();
        assert_eq!(rows.layout().delimiter, b'\t');
        let items = items(rows);
        assert_eq!(attr(row(&items[0]), "city"), Some("Pune, MH"));
        // Quoted delimiters in the header do not count.
        let rows = CsvRows::open(&b"\"a;b;c\",mobile\n"[..], None).unwrap();
        assert_eq!(rows.layout().delimiter, b',');
        assert_eq!(rows.layout().headers[0], "a;b;c");
        let rows = CsvRows::open(&b"mobile\n98765 43210\n"[..], None).unwrap();
        assert_eq!(rows.layout().delimiter, b',');
        assert_eq!(row(&self::items(rows)[0]).mobile, "98765 43210");
    }

    #[test]
    fn blank_rows_are_skipped_but_numbered() {
        let data = b"\n\nmobile,name\n1,a\n\n;;\n,,\n  , \n2,b\n\n";
        let rows = CsvRows::open(&data[..], None).unwrap();
        assert_eq!(rows.layout().data_start, 14);
        let items = items(rows);
        let numbers: Vec<u64> = items.iter().map(|i| row(i).number).collect();
        assert_eq!(numbers, [1, 3, 6]);
        // ";;" is data in a comma-separated file (normalize refuses it); ",," and "  , "
        // are blank rows.
        assert_eq!(row(&items[1]).mobile, ";;");
        assert_eq!(row(&items[2]).mobile, "2");
    }

    #[test]
    fn layout_round_trips_and_codes() {
        let layout = CsvRows::open(&fixture("spreadsheet_export.csv")[..], None)
            .unwrap()
            .layout()
            .clone();
        let json = serde_json::to_value(&layout).unwrap();
        assert_eq!(serde_json::from_value::<CsvLayout>(json).unwrap(), layout);
        let errors = [
            CsvError::NoHeader,
            CsvError::NoNumberColumn { headers: vec![] },
            CsvError::MobileColumnNotFound {
                column: "x".into(),
                headers: vec![],
            },
            CsvError::DuplicateHeader("x".into()),
            CsvError::BadHeader("x"),
            CsvError::Binary,
            CsvError::Io(io::Error::other("x")),
        ];
        let mut codes: Vec<&str> = errors.iter().map(CsvError::code).collect();
        assert!(codes.iter().all(|c| c.starts_with("csv_")));
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), errors.len());
    }

    #[test]
    fn io_error_is_fatal() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let line = b"98765 43210,x\n";
                if self.0 == 0 {
                    return Err(io::Error::other("disk gone"));
                }
                self.0 -= 1;
                buf[..line.len()].copy_from_slice(line);
                Ok(line.len())
            }
        }
        let layout = CsvLayout {
            delimiter: b',',
            headers: vec!["mobile".into(), "name".into()],
            mobile_index: 0,
            data_start: 12,
        };
        let mut rows = CsvRows::resume(Failing(3), layout, 12, 1);
        for _ in 0..3 {
            assert!(matches!(rows.next_item(), Some(Ok(CsvItem::Row(_)))));
        }
        assert_eq!(rows.next_item().unwrap().unwrap_err().code(), "csv_io");
        assert!(rows.next_item().is_none());
    }

    /// `cargo test -p kloyst-contacts --release --lib csv_source::tests::speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn speed() {
        let mut data = b"name,mobile,city,age\r\n".to_vec();
        let n = 1_000_000;
        for i in 0..n {
            data.extend_from_slice(
                format!(
                    "Customer Number {i:07},+91 98{i:08},Bengaluru Urban,{}\r\n",
                    i % 90
                )
                .as_bytes(),
            );
        }
        for _ in 0..3 {
            let start = std::time::Instant::now();
            let mut count = 0;
            for item in CsvRows::open(&data[..], None).unwrap() {
                if let Ok(CsvItem::Row(row)) = item {
                    count += 1;
                    std::hint::black_box(row);
                }
            }
            let elapsed = start.elapsed();
            assert_eq!(count, n);
            println!(
                "CsvRows: {n} rows ({} MB) in {elapsed:?}: {:.0} rows/s",
                data.len() / 1_000_000,
                n as f64 / elapsed.as_secs_f64()
            );
        }
    }
}
