module kfstack.local/runcshim

go 1.22
