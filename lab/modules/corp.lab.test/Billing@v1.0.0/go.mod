module corp.lab.test/Billing

go 1.21
