fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("lab") {
        std::process::exit(modtrace::lab::cli(&args[1..]));
    }
    eprintln!("modtrace: not built yet");
    std::process::exit(2);
}
