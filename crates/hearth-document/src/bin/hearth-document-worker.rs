//! The document worker on its own (the `hearth` binary has it as its
//! `document-worker` subcommand): reads a PDF on stdin, see
//! `hearth_document::worker`.

fn main() {
    std::process::exit(hearth_document::worker::main(std::env::args().skip(1)));
}
