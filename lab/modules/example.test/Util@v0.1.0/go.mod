module example.test/Util

go 1.21
