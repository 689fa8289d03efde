fn main() {
    eprintln!("webapp: not built yet");
    std::process::exit(1);
}
