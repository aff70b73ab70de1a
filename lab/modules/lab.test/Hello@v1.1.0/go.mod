module lab.test/Hello

go 1.21

require lab.test/Util v0.2.0
