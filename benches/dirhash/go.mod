module modtrace.bench/dirhash

go 1.21
