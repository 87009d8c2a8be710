//! Pipes: events read from any byte stream (stdin, a file) and written to stdout.
//!
//! [`PipeSource`] looks at the first bytes to tell NDJSON from the binary framing, then reads
//! with one reused buffer. A malformed line is a recoverable error naming its line; a broken
//! binary frame is fatal (framing is lost) and names its byte offset. [`PipeSink`] writes either
//! format through a large buffer and treats a closed reader (`EPIPE`) as a quiet stop.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};

use super::codec::{BIN_MAGIC, FrameDecoder, FrameEncoder, MAX_FRAME};
use super::{EventSink, EventSource, PipeFormat, Position, SinkError, SourceError};
use crate::event::{Event, JsonWriter};

const BUF_SIZE: usize = 1 << 20;

/// What a standard stream is connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdioKind {
    /// An interactive terminal.
    Terminal,
    /// A FIFO, socket or regular file: data flows through it.
    Pipe,
    /// Nothing useful: `/dev/null`, another device, or closed.
    Null,
}

/// Classifies a standard stream by file descriptor (0, 1 or 2).
pub fn stdio_kind(fd: i32) -> StdioKind {
    use std::io::IsTerminal;
    use std::os::unix::fs::FileTypeExt;
    let is_tty = match fd {
        0 => std::io::stdin().is_terminal(),
        1 => std::io::stdout().is_terminal(),
        _ => std::io::stderr().is_terminal(),
    };
    if is_tty {
        return StdioKind::Terminal;
    }
    match std::fs::metadata(format!("/proc/self/fd/{fd}")) {
        Ok(m) => {
            let t = m.file_type();
            if t.is_fifo() || t.is_socket() || t.is_file() {
                StdioKind::Pipe
            } else {
                StdioKind::Null
            }
        }
        Err(_) => StdioKind::Null,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Undetected,
    Ndjson,
    Bin,
}

/// One item of a pipe as [`PipeSource::next_raw`] gives it.
#[derive(Debug)]
pub enum RawItem<'a> {
    /// An NDJSON line, not parsed.
    Line { bytes: &'a [u8], line: u64 },
    /// An event of the binary framing.
    Event(Event),
}

/// Events from a byte stream in either pipe format, detected from the first bytes.
pub struct PipeSource<R> {
    name: String,
    reader: BufReader<R>,
    mode: Mode,
    line_no: u64,
    offset: u64,
    buf: Vec<u8>,
    subject: Option<String>,
    done: bool,
    frames: FrameDecoder,
}

impl PipeSource<std::io::Stdin> {
    /// Reads standard input.
    pub fn stdin() -> Self {
        widen_pipe(0);
        Self::new(std::io::stdin(), "stdin")
    }
}

impl<R: Read> PipeSource<R> {
    /// Wraps a reader; `name` is used in error messages.
    pub fn new(reader: R, name: impl Into<String>) -> Self {
        PipeSource {
            name: name.into(),
            reader: BufReader::with_capacity(BUF_SIZE, reader),
            mode: Mode::Undetected,
            line_no: 0,
            offset: 0,
            buf: Vec::with_capacity(4096),
            subject: None,
            done: false,
            frames: FrameDecoder::default(),
        }
    }

    /// Subject used to infer the kind of lines that carry no `type` (e.g. a dump of one subject).
    pub fn with_subject(mut self, subject: Option<String>) -> Self {
        self.subject = subject;
        self
    }

    /// The detected format, once the first bytes were read.
    pub fn format(&self) -> Option<PipeFormat> {
        match self.mode {
            Mode::Undetected => None,
            Mode::Ndjson => Some(PipeFormat::Ndjson),
            Mode::Bin => Some(PipeFormat::Bin),
        }
    }

    /// The bytes of the NDJSON line the last event was read from (without its line ending), so
    /// a relay can pass a payload on exactly as it came; `None` for the binary framing.
    pub fn last_line(&self) -> Option<&[u8]> {
        (self.mode == Mode::Ndjson).then(|| self.buf.trim_ascii())
    }

    fn io_err(&self, source: std::io::Error) -> SourceError {
        SourceError::Io {
            input: self.name.clone(),
            source,
        }
    }

    fn detect(&mut self) -> Result<(), SourceError> {
        // Fill until we have the magic's length or the input ends.
        let mut head = Vec::with_capacity(BIN_MAGIC.len());
        loop {
            let avail = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io_err(e)),
            };
            if avail.is_empty() {
                break;
            }
            let want = BIN_MAGIC.len() - head.len();
            let n = want.min(avail.len());
            head.extend_from_slice(&avail[..n]);
            if head.as_slice() != &BIN_MAGIC[..head.len()] {
                break; // not the magic: NDJSON; nothing consumed
            }
            self.reader.consume(n);
            if head.len() == BIN_MAGIC.len() {
                self.mode = Mode::Bin;
                self.offset = BIN_MAGIC.len() as u64;
                return Ok(());
            }
        }
        if !head.is_empty() && head.as_slice() == &BIN_MAGIC[..head.len()] {
            // A prefix of the magic was consumed and the input ended: a truncated header.
            self.mode = Mode::Bin;
            return Err(SourceError::Fatal {
                input: self.name.clone(),
                message: format!(
                    "truncated binary header at byte offset 0 ({} of {} bytes)",
                    head.len(),
                    BIN_MAGIC.len()
                ),
            });
        }
        self.mode = Mode::Ndjson;
        Ok(())
    }

    /// Reads the next non-blank line into `buf`; returns its 1-based number.
    fn read_line(&mut self) -> Result<Option<u64>, SourceError> {
        loop {
            self.buf.clear();
            let n = loop {
                match self.reader.read_until(b'\n', &mut self.buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => return Err(self.io_err(e)),
                }
            };
            if n == 0 {
                return Ok(None);
            }
            self.line_no += 1;
            if !self.buf.trim_ascii().is_empty() {
                return Ok(Some(self.line_no));
            }
        }
    }

    fn next_line(&mut self) -> Result<Option<Event>, SourceError> {
        let Some(line_no) = self.read_line()? else {
            return Ok(None);
        };
        Event::from_json(self.buf.trim_ascii(), self.subject.as_deref())
            .map(Some)
            .map_err(|e| SourceError::Bad {
                input: self.name.clone(),
                position: Position::Line(line_no),
                message: e.to_string(),
            })
    }

    /// The next item without parsing NDJSON: a line's bytes (trimmed, with its 1-based
    /// number) for a reader that wants only part of each object, or an event decoded from the
    /// binary framing. Blank lines are skipped. Mixing this with `next_event` is allowed.
    pub fn next_raw(&mut self) -> Result<Option<RawItem<'_>>, SourceError> {
        if self.done {
            return Ok(None);
        }
        if matches!(self.mode, Mode::Undetected) {
            self.detect()?;
        }
        if matches!(self.mode, Mode::Bin) {
            let result = self.next_frame();
            if matches!(result, Ok(None) | Err(_)) {
                self.done = true;
            }
            return result.map(|e| e.map(RawItem::Event));
        }
        let line = match self.read_line() {
            Ok(Some(line)) => line,
            other => {
                self.done = true;
                return other.map(|_| None);
            }
        };
        Ok(Some(RawItem::Line {
            bytes: self.buf.trim_ascii(),
            line,
        }))
    }

    /// Name of this input in error messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn next_frame(&mut self) -> Result<Option<Event>, SourceError> {
        let start = self.offset;
        let mut len_bytes = [0u8; 4];
        match read_full(&mut self.reader, &mut len_bytes) {
            Ok(0) => return Ok(None),
            Ok(4) => {}
            Ok(got) => {
                return Err(self.fatal(start, format!("truncated frame length ({got} of 4 bytes)")));
            }
            Err(e) => return Err(self.io_err(e)),
        }
        let len = u32::from_le_bytes(len_bytes) as usize;
        if len > MAX_FRAME {
            return Err(self.fatal(start, format!("frame length {len} exceeds {MAX_FRAME}")));
        }
        self.buf.resize(len, 0);
        match read_full(&mut self.reader, &mut self.buf) {
            Ok(got) if got == len => {}
            Ok(got) => {
                return Err(self.fatal(start, format!("truncated frame ({got} of {len} bytes)")));
            }
            Err(e) => return Err(self.io_err(e)),
        }
        self.offset += 4 + len as u64;
        self.frames
            .decode(&self.buf)
            .map(Some)
            .map_err(|e| self.fatal(start, e.to_string()))
    }

    fn fatal(&self, offset: u64, message: String) -> SourceError {
        SourceError::Fatal {
            input: self.name.clone(),
            message: format!("byte offset {offset}: {message}"),
        }
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

impl<R: Read> EventSource for PipeSource<R> {
    fn next_event(&mut self) -> Result<Option<Event>, SourceError> {
        if self.done {
            return Ok(None);
        }
        if matches!(self.mode, Mode::Undetected) {
            self.detect()?;
        }
        let result = match self.mode {
            Mode::Bin => self.next_frame(),
            _ => self.next_line(),
        };
        // After a fatal error the framing is lost: the source is finished.
        if matches!(
            result,
            Ok(None) | Err(SourceError::Fatal { .. } | SourceError::Io { .. })
        ) {
            self.done = true;
        }
        result
    }

    fn recycle(&mut self, event: Event) {
        if matches!(self.mode, Mode::Bin) {
            self.frames.recycle(event);
        }
    }
}

/// Events written to a byte stream (stdout by default) in either pipe format.
pub struct PipeSink<W: Write> {
    out: W,
    format: PipeFormat,
    buf: Vec<u8>,
    started: bool,
    frames: FrameEncoder,
    json: JsonWriter,
}

impl PipeSink<std::io::Stdout> {
    /// Writes to standard output. When it is a pipe, the pipe's buffer is enlarged so that the
    /// two ends of a fast pipeline run in parallel instead of taking turns every 64 KiB.
    pub fn stdout(format: PipeFormat) -> Self {
        widen_pipe(1);
        Self::new(std::io::stdout(), format)
    }
}

/// Asks the kernel for a 1 MiB buffer on the pipe at `fd` (best effort: not a pipe, or a
/// system limit, leaves it as it is).
pub fn widen_pipe(fd: i32) {
    use std::os::unix::fs::FileTypeExt;
    let is_fifo =
        std::fs::metadata(format!("/proc/self/fd/{fd}")).is_ok_and(|m| m.file_type().is_fifo());
    if is_fifo {
        // SAFETY: F_SETPIPE_SZ on a descriptor we own only changes the pipe's capacity.
        unsafe {
            libc::fcntl(fd, libc::F_SETPIPE_SZ, 1 << 20);
        }
    }
}

impl<W: Write> PipeSink<W> {
    pub fn new(out: W, format: PipeFormat) -> Self {
        PipeSink {
            out,
            format,
            buf: Vec::with_capacity(BUF_SIZE + 64 * 1024),
            started: false,
            frames: FrameEncoder::default(),
            json: JsonWriter::new(),
        }
    }

    fn write_out(&mut self) -> Result<(), SinkError> {
        let result = self.out.write_all(&self.buf);
        self.buf.clear();
        result.map_err(map_write_err)
    }

    /// The inner writer (tests).
    pub fn into_inner(self) -> W {
        self.out
    }
}

fn map_write_err(e: std::io::Error) -> SinkError {
    if e.kind() == ErrorKind::BrokenPipe {
        SinkError::Closed
    } else {
        SinkError::Io(e)
    }
}

impl<W: Write> EventSink for PipeSink<W> {
    fn send(&mut self, event: &Event) -> Result<(), SinkError> {
        match self.format {
            PipeFormat::Ndjson => {
                self.json.write(event, &mut self.buf);
                self.buf.push(b'\n');
            }
            PipeFormat::Bin => {
                if !self.started {
                    self.buf.extend_from_slice(BIN_MAGIC);
                }
                self.frames.encode(event, &mut self.buf);
            }
        }
        self.started = true;
        if self.buf.len() >= BUF_SIZE {
            self.write_out()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.finish()
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        if !self.buf.is_empty() {
            self.write_out()?;
        }
        self.out.flush().map_err(map_write_err)
    }
}

/// A sink that flushes after every event: for low-rate live outputs such as signals on a terminal.
pub struct LineFlush<S>(pub S);

impl<W: Write> EventSink for LineFlush<PipeSink<W>> {
    fn send(&mut self, event: &Event) -> Result<(), SinkError> {
        self.0.send(event)?;
        self.0.finish()
    }
    fn finish(&mut self) -> Result<(), SinkError> {
        self.0.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::codec::tests::{same, sample_events};

    fn write_all(format: PipeFormat) -> Vec<u8> {
        let mut sink = PipeSink::new(Vec::new(), format);
        for ev in sample_events() {
            sink.send(&ev).unwrap();
        }
        sink.finish().unwrap();
        sink.into_inner()
    }

    fn read_all(bytes: &[u8]) -> (Vec<Event>, Vec<SourceError>) {
        let mut src = PipeSource::new(bytes, "test");
        let (mut events, mut errors) = (Vec::new(), Vec::new());
        loop {
            match src.next_event() {
                Ok(Some(e)) => events.push(e),
                Ok(None) => break,
                Err(e) => {
                    let go_on = e.is_recoverable();
                    errors.push(e);
                    if !go_on {
                        break;
                    }
                }
            }
        }
        (events, errors)
    }

    #[test]
    fn both_formats_are_detected_and_carry_the_same_events() {
        for format in [PipeFormat::Ndjson, PipeFormat::Bin] {
            let bytes = write_all(format);
            assert_eq!(bytes.starts_with(BIN_MAGIC), format == PipeFormat::Bin);
            let (events, errors) = read_all(&bytes);
            assert!(errors.is_empty(), "{errors:?}");
            let expected = sample_events();
            assert_eq!(events.len(), expected.len());
            for (a, b) in events.iter().zip(&expected) {
                assert!(same(a, b), "{format:?}: {a:?} != {b:?}");
            }
        }
    }

    #[test]
    fn ndjson_output_is_one_event_per_line_in_the_contract_encoding() {
        let bytes = write_all(PipeFormat::Ndjson);
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), sample_events().len());
        for (line, ev) in lines.iter().zip(sample_events()) {
            assert_eq!(*line, ev.to_json());
        }
    }

    #[test]
    fn malformed_line_is_reported_with_its_number_and_reading_goes_on() {
        let good = sample_events()[0].to_json();
        let input = format!("{good}\n\n{{\"type\":\"futures_trade\",\"price\":\n{good}\n");
        let (events, errors) = read_all(input.as_bytes());
        assert_eq!(events.len(), 2);
        assert_eq!(errors.len(), 1);
        let msg = errors[0].to_string();
        assert!(msg.starts_with("test: line 3: malformed JSON"), "{msg}");
    }

    #[test]
    fn truncated_binary_stream_keeps_earlier_events_and_names_the_offset() {
        let bytes = write_all(PipeFormat::Bin);
        let cut = bytes.len() - 10;
        let (events, errors) = read_all(&bytes[..cut]);
        assert_eq!(events.len(), sample_events().len() - 1);
        assert_eq!(errors.len(), 1);
        assert!(!errors[0].is_recoverable());
        let msg = errors[0].to_string();
        assert!(
            msg.contains("byte offset") && msg.contains("truncated frame"),
            "{msg}"
        );
    }

    #[test]
    fn empty_input_and_truncated_magic_are_handled() {
        let (events, errors) = read_all(b"");
        assert!(events.is_empty() && errors.is_empty());
        let (events, errors) = read_all(&BIN_MAGIC[..3]);
        assert!(events.is_empty());
        assert!(errors[0].to_string().contains("truncated binary header"));
    }

    #[test]
    fn closed_reader_is_a_quiet_stop() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::from(ErrorKind::BrokenPipe))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut sink = PipeSink::new(Closed, PipeFormat::Ndjson);
        sink.send(&sample_events()[0]).unwrap();
        assert!(matches!(sink.finish(), Err(SinkError::Closed)));
    }
}
