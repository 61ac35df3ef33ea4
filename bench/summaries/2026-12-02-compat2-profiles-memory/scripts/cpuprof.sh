#!/bin/bash
# cpuprof.sh ROOT REG OUTDIR APP: the app under --cpu-prof, wrk 1 thread 64 conns 5 s
ROOT=$1; REG=$2; OUT=$3; APP=${4:-fastify}
mkdir -p $OUT
cd $ROOT
MEGAPIPE_REGISTER=$REG taskset -c 0 node --cpu-prof --cpu-prof-dir=$OUT --import megapipe/register --import /tmp/compat2-mem/stathook.mjs dist/bench/servers/compat-app.js --app $APP --port 18777 > $OUT/srv.log 2>&1 &
PID=$!
sleep 1.5
taskset -c 1 wrk -t1 -c64 -d1s http://127.0.0.1:18777/ > /dev/null
kill -USR2 $PID; sleep 0.3
taskset -c 1 wrk -t1 -c64 -d5s http://127.0.0.1:18777/ > $OUT/wrk.txt
kill -USR2 $PID; sleep 0.3
kill -INT $PID; wait $PID
