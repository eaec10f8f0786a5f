-- wrk script for `make bench-intake`: POSTs one file (the sample booking) as JSON.
-- Usage: wrk -t1 -c16 -d20s --latency -s tests/benchmarks/intake.lua URL -- BODY_FILE
function init(args)
    local file = assert(io.open(args[1], "rb"))
    wrk.method = "POST"
    wrk.body = file:read("*a")
    wrk.headers["Content-Type"] = "application/json"
    file:close()
end
