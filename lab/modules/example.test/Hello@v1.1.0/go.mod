module example.test/Hello

go 1.21

require example.test/Util v0.2.0
