//! Shared code of the golden vector tests: the JSON file shapes ([`json`]) and the
//! generators that build every vector file from Rust values ([`cases`], [`invalid`],
//! [`numeric`], [`trace`]).

pub mod cases;
pub mod invalid;
pub mod json;
pub mod numeric;
pub mod trace;

use std::io::{self, Write};
use std::path::PathBuf;

use serde::Serialize;
use serde_json::ser::Formatter;

/// The directory of the vector files.
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// Every vector file as the generator builds it: file name and pretty JSON.
pub fn generated_files() -> Vec<(&'static str, String)> {
    fn pretty(v: &impl Serialize, expanded_depth: usize) -> String {
        let mut out = Vec::new();
        let fmt = ShallowPretty {
            depth: 0,
            has_value: false,
            expanded_depth,
        };
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        v.serialize(&mut ser).expect("vectors serialize");
        out.push(b'\n');
        String::from_utf8(out).expect("JSON is UTF-8")
    }
    vec![
        ("client_messages.json", pretty(&cases::client_file(), 4)),
        ("server_messages.json", pretty(&cases::server_file(), 4)),
        ("invalid_messages.json", pretty(&invalid::invalid_file(), 3)),
        ("step_trace.json", pretty(&numeric::step_file(), 4)),
        ("checksum.json", pretty(&numeric::checksum_file(), 2)),
        ("snapshot_trace.json", pretty(&trace::trace_file(), 3)),
    ]
}

/// Pretty-prints the outer levels of a file (one case, step or entity per line)
/// and keeps deeper values such as `{"x": 53, "y": 0}` on one line.
struct ShallowPretty {
    depth: usize,
    has_value: bool,
    /// Containers nested at most this deep are spread over lines.
    expanded_depth: usize,
}

impl ShallowPretty {
    fn separator<W: ?Sized + Write>(&self, w: &mut W, first: bool) -> io::Result<()> {
        if self.depth <= self.expanded_depth {
            w.write_all(if first { b"\n" } else { b",\n" })?;
            w.write_all(&b"  ".repeat(self.depth))
        } else if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin<W: ?Sized + Write>(&mut self, w: &mut W, open: &[u8]) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(open)
    }

    fn end<W: ?Sized + Write>(&mut self, w: &mut W, close: &[u8]) -> io::Result<()> {
        let expanded = self.depth <= self.expanded_depth;
        self.depth -= 1;
        if self.has_value && expanded {
            w.write_all(b"\n")?;
            w.write_all(&b"  ".repeat(self.depth))?;
        }
        w.write_all(close)
    }
}

impl Formatter for ShallowPretty {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.begin(w, b"[")
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.end(w, b"]")
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.separator(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.begin(w, b"{")
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.end(w, b"}")
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.separator(w, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}
