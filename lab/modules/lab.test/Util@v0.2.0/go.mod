module lab.test/Util

go 1.21
