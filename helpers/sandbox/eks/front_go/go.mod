module webhooksfront

go 1.21
