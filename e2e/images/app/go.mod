module nonstop.test/app

go 1.26
