import type { enNudges } from './en-nudges.ts';

/** 넛지(유휴 점유 알림) 문구: GPU 페이지와 내 작업. */
export const koNudges: typeof enNudges = {
  nudges: {
    title: '유휴 점유 알림',
    summary: '{time}에 {user}님에게 {gpu} 알림을 보냈습니다',
    summaryYou: '{time}에 {gpu} 알림을 받았습니다',
    snoozedUntil: '; {until}까지 알림 끔',
    escalated: '; 프로젝트 책임자에게 알림',
    kinds: {
      nudge: '{time}: {user}님에게 {gpu} 알림',
      snooze: '{time}: {user}님이 {gpu}를 아직 사용 중: {until}까지 알림 끔',
      escalation: '{time}: 프로젝트 책임자에게 {user}님의 유휴 {gpu} 알림',
      ops: '{time}: 운영팀에 {gpu} 경보',
      resolved: '{time}: {gpu} 유휴 해소 (알림 {minutes}분 후)',
    },
    emailNotConfigured: '메일 미설정',
    noAddress: '메일 주소 없음',
    emailFailed: '메일 실패',
  },
};
