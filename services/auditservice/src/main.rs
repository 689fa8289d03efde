fn main() {
    eprintln!("auditservice: not built yet");
    std::process::exit(1);
}
