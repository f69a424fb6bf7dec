import type { MessageSchema } from './en.ts';
import { koAccess } from './ko-access.ts';
import { koMetrics } from './ko-metrics.ts';
import { koNudges } from './ko-nudges.ts';
import { koReports } from './ko-reports.ts';
import { koViews } from './ko-views.ts';
import { koWall } from './ko-wall.ts';

/** 한국어 메시지. */
export const ko: MessageSchema = {
  app: {
    name: 'gpupulse',
    tagline: '실시간 GPU 모니터링',
    skipToContent: '본문으로 건너뛰기',
  },
  nav: {
    label: '보기',
    cluster: '클러스터',
    comingSoon: '프로젝트, 추이, 내 작업 화면: 준비 중',
  },
  settings: {
    language: '언어',
    theme: '테마',
    dark: '어두운 테마',
    light: '밝은 테마',
    switchToLight: '밝은 테마로 전환',
    switchToDark: '어두운 테마로 전환',
  },
  connection: {
    label: '서버 연결',
    connecting: '연결 중',
    connected: '연결됨',
    reconnecting: '재연결 중',
    disconnected: '연결 끊김',
  },
  freshness: {
    updated: '마지막 업데이트 {ago}',
    stale: '오래된 데이터: 마지막 업데이트 {ago}',
    never: '아직 데이터 없음',
  },
  banner: {
    disconnected: '서버와의 연결이 끊겼습니다. 다시 시도하는 중이며, 아래 수치는 실시간이 아닙니다.',
    reconnecting: '서버에 재연결하는 중… 아래 수치는 실시간이 아닙니다.',
    storageMemory: '메모리 저장소 사용 중: 서버를 재시작하면 이력이 사라집니다.',
    storageDown: '저장소가 쓰기를 받지 않습니다. 실시간 보기만 가능하며 이력에 빈 구간이 생길 수 있습니다.',
    storageCodes: {
      memory:
        '최근 2시간만 보관됩니다. 이력을 계속 남기려면 GPUPULSE_INFLUX_URL을 설정하거나 influxd를 설치하세요.',
      'memory-influxd-failed': '관리형 InfluxDB(influxd)를 시작하지 못해 최근 2시간만 보관됩니다.',
      'influx-unreachable': 'InfluxDB가 응답하지 않습니다(주소와 오류는 서버 로그에 있습니다).',
    },
  },
  empty: {
    connecting: '서버에 연결하는 중…',
    noAgents: '아직 연결된 에이전트가 없습니다',
    noAgentsHint:
      'GPU 노드에서 {command} 명령으로 에이전트를 시작하거나, {sim} 명령으로 가상 클러스터를 실행하세요.',
    unreachable: '서버에 연결할 수 없습니다. 다시 시도하는 중…',
  },
  headline: {
    label: '클러스터 요약',
    gpus: 'GPU',
    busy: '사용 중',
    idle: '유휴',
    unknown: '알 수 없음',
    offline: '오프라인',
    ofTotal: '전체 {total}',
    meanUtilization: '평균 가동률',
    meanUtilizationHint: '가동률을 알 수 있는 GPU 기준',
    power: 'GPU 전력',
    nodes: '노드',
    online: '온라인',
    stale: '응답 지연',
  },
  status: {
    online: '온라인',
    stale: '응답 지연',
    offline: '오프라인',
  },
  collector: {
    absent: 'nvidia-smi 없음',
    stale: 'GPU 데이터 지연',
    error: 'GPU 수집기 오류',
  },
  grid: {
    title: '전체 GPU',
    description: '노드별로 묶은 GPU 타일, 색은 가동률',
    legendLow: '0%',
    legendHigh: '100%',
    legendUnknown: '알 수 없음',
    legendOffline: '오프라인',
    legendHot: '고온 (≥ {temp})',
  },
  gpu: {
    title: 'GPU {index}',
    utilization: '가동률',
    memory: '메모리',
    temperature: '온도',
    power: '전력',
    project: '프로젝트',
    noProject: '프로세스 없음',
    unassigned: '미지정',
    unknown: '알 수 없음',
    activity: {
      offline: '오프라인 (노드 응답 없음)',
      unknown: '알 수 없음 (지연된 데이터)',
      inUse: '사용 중',
      idleHeld: '점유 중 유휴',
      free: '비어 있음',
    },
    hot: '고온',
    state: '상태',
    stateStale: '지연',
    stateError: '오류',
    nodeOffline: '노드 오프라인',
    nodeStale: '노드 응답 지연',
    throttle: '클럭 이벤트',
  },
  nodes: {
    title: '노드',
    count: '노드 없음 | 노드 {n}개 | 노드 {n}개',
    node: '노드',
    status: '상태',
    gpus: 'GPU',
    meanUtil: '평균 가동률',
    maxTemp: '최고 온도',
    cpu: 'CPU',
    gpuUtil: 'GPU별 가동률',
    gpuCellLabel: 'GPU {index}: {value}',
  },
  ...koViews,
  ...koWall,
  ...koMetrics,
  ...koAccess,
  ...koNudges,
  ...koReports,
};
