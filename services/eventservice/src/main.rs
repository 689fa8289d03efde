fn main() {
    eprintln!("eventservice: not built yet");
    std::process::exit(1);
}
