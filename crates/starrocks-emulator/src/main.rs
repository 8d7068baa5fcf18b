fn main() {
    eprintln!("starrocks-emulator: not built yet");
    std::process::exit(2);
}
