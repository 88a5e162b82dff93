module floorwebhook

go 1.21
